"""WTML documents, written and read with wwt_data_formats.

``LastUpdated`` (ISO 8601) is an astroflow attribute on the ``Place`` element: WWT clients and
wwt_data_formats ignore unknown attributes; ``reindex`` sorts on it.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

from wwt_data_formats import write_xml_doc
from wwt_data_formats.enums import DataSetType, ProjectionType
from wwt_data_formats.folder import Folder, make_absolutizing_url_mutator
from wwt_data_formats.imageset import ImageSet
from wwt_data_formats.place import Place

from astroflow.models.errors import ProcessingError
from astroflow.models.ingest import StretchHints, StudyPlacement, parse_timestamp
from astroflow.storage.ingest.layout import ImageLayout

URL_TEMPLATE = "L{1}X{2}Y{3}.png"
#: WWT's tiled-FITS layout, as toasty writes it (``processing.fits_tiling.FitsTile.name``)
FITS_URL_TEMPLATE = "{1}/{3}/{3}_{2}.fits"


def _doc_bytes(element: ET.Element) -> bytes:
    buf = io.BytesIO()
    write_xml_doc(element, dest_stream=buf, dest_wants_bytes=True)
    return buf.getvalue()


def study_folder(
    p: StudyPlacement,
    *,
    name: str,
    credits: str = "",
    credits_url: str = "",
    description: str = "",
    description_on_place: bool = False,
    annotation: str = "",
    fits: StretchHints | None = None,
) -> Folder:
    """A one-Place folder for a tiled study, with relative URLs (``index_rel.wtml``).

    The description goes on the ImageSet, or on the Place with ``description_on_place``
    (toasty's choice for Djangoplicity images); ``annotation`` is the Place's
    ``Annotation``. With ``fits`` the tiles are WWT's tiled FITS (``FileType=".fits"``,
    toasty's URL template) and the ImageSet carries their data range and cut.
    """
    imgset = ImageSet()
    imgset.name = name
    imgset.data_set_type = DataSetType.SKY
    imgset.projection = ProjectionType.TAN
    imgset.tile_levels = p.tile_levels
    imgset.sparse = True
    imgset.bottoms_up = False
    imgset.width_factor = 2
    imgset.file_type = ".png" if fits is None else ".fits"
    imgset.url = URL_TEMPLATE if fits is None else FITS_URL_TEMPLATE
    if fits is not None:
        if fits.data_min is not None:
            imgset.data_min = fits.data_min
        if fits.data_max is not None:
            imgset.data_max = fits.data_max
        imgset.pixel_cut_low = fits.cut_low
        imgset.pixel_cut_high = fits.cut_high
    imgset.thumbnail_url = ImageLayout.THUMBNAIL
    imgset.center_x = p.center_x
    imgset.center_y = p.center_y
    imgset.rotation_deg = p.rotation_deg
    imgset.base_degrees_per_tile = p.base_degrees_per_tile
    imgset.offset_x = p.offset_x
    imgset.offset_y = p.offset_y
    if credits:
        imgset.credits = credits
    if credits_url:
        imgset.credits_url = credits_url
    if description and not description_on_place:
        imgset.description = description
    place = Place()
    place.name = name
    place.data_set_type = DataSetType.SKY
    place.set_ra_dec(p.ra_hours, p.dec_deg)
    place.rotation_deg = 0.0
    place.zoom_level = p.zoom_level
    place.thumbnail = ImageLayout.THUMBNAIL
    place.foreground_image_set = imgset
    if description and description_on_place:
        place.description = description
    if annotation:
        place.annotation = annotation
    folder = Folder()
    folder.name = name
    folder.children = [place]
    return folder


def _with_last_updated(folder: Folder, stamps: list[str]) -> bytes:
    root = folder.to_xml()
    places = [el for el in root if el.tag == "Place"]
    for el, stamp in zip(places, stamps, strict=True):
        if stamp:
            el.set("LastUpdated", stamp)
    return _doc_bytes(root)


def index_documents(folder: Folder, url_prefix: str, last_updated: str) -> tuple[bytes, bytes]:
    """``(index_rel.wtml, index.wtml)``: the second with URLs absolute under ``url_prefix``."""
    rel = _with_last_updated(folder, [last_updated])
    absolute = Folder.from_text(rel.decode("utf-8"))
    absolute.mutate_urls(make_absolutizing_url_mutator(url_prefix))
    return rel, _with_last_updated(absolute, [last_updated])


@dataclass(frozen=True)
class PlaceEntry:
    """The Place of one published image."""

    image_id: str
    place: Place
    last_updated: datetime


def parse_last_updated(text: str) -> datetime:
    """ISO 8601 to an aware datetime (naive means UTC); unparseable or empty gives the epoch."""
    return parse_timestamp(text) or datetime(1970, 1, 1, tzinfo=UTC)


def read_place(image_id: str, data: bytes, written: datetime | None = None) -> PlaceEntry:
    """The single Place of an image's ``index.wtml``, dated by its ``LastUpdated``, or, for
    one without (toasty's own), by ``written``: when the document was written to the
    repository (so that a toasty repository keeps its order and astroflow's images
    interleave by date).

    Raises
    ------
    ProcessingError
        When the document is not WTML or holds no Place.
    """
    try:
        root = ET.fromstring(data)
        folder = Folder.from_xml(root)
    except Exception as exc:
        raise ProcessingError(f"{image_id}/index.wtml is not valid WTML: {exc}") from exc
    places = [c for c in folder.children if isinstance(c, Place)]
    elements = [el for el in root if el.tag == "Place"]
    if not places:
        raise ProcessingError(f"{image_id}/index.wtml holds no Place")
    stamp = elements[0].get("LastUpdated", "") if elements else ""
    if not stamp and written is not None:
        return PlaceEntry(image_id, places[0], written)
    return PlaceEntry(image_id, places[0], parse_last_updated(stamp))


def root_index(entries: list[PlaceEntry], folder_name: str, thumbnail_url: str) -> bytes:
    """The repository's root ``index.wtml``: Places newest first (ties by id)."""
    ordered = sorted(entries, key=lambda e: (-e.last_updated.timestamp(), e.image_id))
    folder = Folder()
    folder.name = folder_name
    if thumbnail_url:
        folder.thumbnail = thumbnail_url
    folder.children = [e.place for e in ordered]
    return _with_last_updated(folder, [e.last_updated.isoformat() for e in ordered])


def check_wtml(data: bytes, what: str) -> Folder:
    """Parse WTML bytes or raise :class:`ProcessingError` naming ``what``."""
    try:
        return Folder.from_text(data.decode("utf-8"))
    except Exception as exc:
        raise ProcessingError(f"{what} is not valid WTML: {exc}") from exc
