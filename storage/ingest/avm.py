"""AVM tags of a picture, read as a WWT engineer needs them.

pyavm refuses a whole packet when one tag breaks its spec (press images from NOIRLab carry
``Spatial.Notes`` as a list: "Spatial.Notes is not a string or unicode"). Here the XMP packet
is walked tag by tag with pyavm's own specs: a tag that does not check is left out and
named, and only the spatial tags the WCS is built from are needed. Missing or unreadable
spatial tags, or ones that contradict each other, still reject the image.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astroflow.models.errors import WcsError

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
# The tags pyavm's to_wcs reads: one of these unreadable means no trustworthy placement.
SPATIAL_TAGS = frozenset(
    {
        "Spatial.CoordinateFrame",
        "Spatial.Equinox",
        "Spatial.ReferenceValue",
        "Spatial.ReferenceDimension",
        "Spatial.ReferencePixel",
        "Spatial.Scale",
        "Spatial.Rotation",
        "Spatial.CoordsystemProjection",
        "Spatial.CDMatrix",
    }
)


@dataclass(frozen=True)
class AvmWcs:
    """The WCS of a picture's AVM tags (FITS convention: y from the bottom row) and the tags
    that were left out because they could not be read (``"Spatial.Notes: <why>"``)."""

    wcs: Any
    ignored: tuple[str, ...] = ()


def _xml(path: Path) -> bytes | None:
    """The ``x:xmpmeta`` document of the first XMP packet, or None without one."""
    from pyavm.exceptions import NoXMPPacketFound
    from pyavm.extract import extract_xmp

    try:
        xmp = extract_xmp(str(path))
    except NoXMPPacketFound:
        return None
    if xmp is None:
        return None
    try:
        start = xmp.index(b"?>", xmp.index(b"<?xpacket begin=")) + 2
        end = xmp.index(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")
    except ValueError:
        return None
    return xmp[start:end]


def _walk(node: ET.Element, namespaces: dict[str, str], out: dict, odd: list[str]) -> None:
    """pyavm's ``parse_avm_content``, except that a tag of an unexpected shape is named in
    ``odd`` instead of failing the packet."""
    for name, value in node.attrib.items():
        if name.startswith("{"):
            uri, tag = name[1:].split("}", 1)
            if uri in namespaces:
                out[namespaces[uri], tag] = value
    for item in node:
        if not isinstance(item.tag, str) or not item.tag.startswith("{"):
            continue
        uri, tag = item.tag[1:].split("}", 1)
        if uri == RDF:
            _walk(item, namespaces, out, odd)
        elif uri in namespaces:
            if len(item) == 0:
                out[namespaces[uri], tag] = item.text
            elif len(item) == 1 and item[0].tag in (
                f"{{{RDF}}}Bag",
                f"{{{RDF}}}Seq",
                f"{{{RDF}}}Alt",
            ):
                out[namespaces[uri], tag] = [x.text for x in item[0]]
            elif len(item) == 1:
                odd.append(tag)
            else:
                _walk(item, namespaces, out, odd)


def read_avm(path: Path, width: int, height: int, label: str) -> AvmWcs | None:
    """The WCS of the picture's AVM tags for its ``width`` x ``height`` pixels; None when it
    has no XMP packet or no spatial tags at all (an untagged picture).

    Raises
    ------
    WcsError
        Naming ``label``, when the XMP is not XML, a spatial tag cannot be read, or the
        spatial tags give no WCS.
    """
    from pyavm import AVM
    from pyavm.avm import NoSpatialInformation, namespaces

    xml = _xml(path)
    if xml is None:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise WcsError(f"{label}: the XMP packet is not XML ({exc})") from None
    content: dict[tuple[str, str], Any] = {}
    odd: list[str] = []
    _walk(root, namespaces, content, odd)
    avm = AVM()
    ignored: list[str] = [f"{tag}: unexpected XMP structure" for tag in odd]
    for key, value in content.items():
        if key not in avm._reverse_specs:
            continue
        avm_name = avm._reverse_specs[key]
        try:
            value = avm._specs[avm_name].check_data(value)
        except Exception as exc:  # pyavm's own errors (list lengths, vocabularies) too
            detail = " ".join(str(exc).split()).removeprefix(avm_name).strip()
            ignored.append(f"{avm_name}: {detail or type(exc).__name__}")
            continue
        if "." in avm_name:
            family, tag = avm_name.split(".", 1)
            avm._items[family]._items[tag] = value
        elif hasattr(avm._items.get(avm_name), "value"):
            avm._items[avm_name].value = value
        else:
            avm._items[avm_name] = value
    broken = [i for i in ignored if i.split(":", 1)[0] in SPATIAL_TAGS]
    if broken:
        raise WcsError(f"{label}: unreadable AVM spatial tags: {'; '.join(broken)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = avm.to_wcs(target_shape=(width, height))
    except NoSpatialInformation:
        return None
    except Exception as exc:
        detail = " ".join(str(exc).split())
        raise WcsError(f"{label}: AVM tags give no WCS: {detail}") from exc
    return AvmWcs(wcs, tuple(ignored))


def has_avm(path: Path) -> bool:
    """Whether the picture carries AVM spatial tags (readable or not)."""
    xml = _xml(path)
    return xml is not None and b"Spatial." in xml
