"""The ``djangoplicity`` source: a Djangoplicity press-image archive (ESO, ESA/Hubble, NOIRLab).

The query pages through ``{base_url}archive/search/{search_page_name}/{n}/?type=Observation``
(n = 1, 2, ...) until a 404 and reads the ``var images = [...]`` list of each page: ids only.
Each image's record, ``{base_url}{id}/api/json/``, is read when the image is fetched
(:meth:`DjangoplicitySource.resolve`), as toasty does: a published image costs no request.
The record's AVM-like ``Spatial.*`` fields become the same ``wcs_*`` fields an AstroPix feed
carries, so the image is placed exactly as toasty places it.
"""

from __future__ import annotations

import ast
import contextlib
import html
import json
from datetime import datetime
from typing import Any
from urllib.parse import quote, urljoin

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

from astroflow.models.errors import DownloadError, ErrorReport, InvalidKeyError, ProcessingError
from astroflow.models.ingest import Candidate, Reject, parse_timestamp
from astroflow.storage.ingest.sources.base import FeedResult, ImageSource, web_picture_extension
from astroflow.storage.ingest.sources.web import get_json, get_with_retries
from astroflow.storage.keys import validate_id

MAX_PAGES = 10_000  # a server that never answers 404 still ends
_LISTING = "var images = ["
SPATIAL = ("ReferenceValue", "ReferencePixel", "Scale", "Rotation")


def fix_bytes_repr(obj: Any) -> Any:
    """Undo the Python-bytes reprs some Djangoplicity installations send as text
    (``"b'Brown dwarf (artist\\\\xe2\\\\x80\\\\x99s concept)'"``), in strings, lists and dicts.
    Text that only looks like one is kept as it is."""
    if isinstance(obj, str):
        if len(obj) >= 3 and obj[0] == "b" and obj[1] in "'\"" and obj[-1] == obj[1]:
            try:
                value = ast.literal_eval(obj)
            except (ValueError, SyntaxError):
                return obj
            if isinstance(value, bytes):
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    return obj
        return obj
    if isinstance(obj, list):
        return [fix_bytes_repr(x) for x in obj]
    if isinstance(obj, dict):
        return {k: fix_bytes_repr(v) for k, v in obj.items()}
    return obj


def images_on_page(text: str, url: str) -> list[Any]:
    """The entries of a search page's ``var images = [ ... ];`` JavaScript literal (keys are
    unquoted, so it is read as YAML, as toasty does).

    Raises
    ------
    DownloadError
        When the page holds no such list or it cannot be read.
    """
    start = text.find(_LISTING)
    end = text.find("];", start)
    if start < 0 or end < 0:
        raise DownloadError(f"search page {url}: no '{_LISTING}...];' list")
    try:
        data = yaml.safe_load(text[start + len(_LISTING) - 1 : end + 1])
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise DownloadError(f"search page {url}: unreadable images list: {detail}") from None
    if not isinstance(data, list):
        raise DownloadError(f"search page {url}: the images list is not a list")
    return data


class DjangoplicityConfig(BaseModel):
    """The ``djangoplicity`` section (toasty's keys): a Djangoplicity press-image archive
    (ESO, ESA/Hubble, NOIRLab).

    Attributes
    ----------
    base_url
        The archive's image root, ending in ``/`` (``https://noirlab.edu/public/images/``).
    channel_name
        Written into each Place's annotation (``"channel"``).
    search_page_name
        The path word of the search pages, ``{base_url}archive/search/<it>/<n>/``.
    force_insecure_tls
        Do not verify the archive's TLS certificates (toasty's default, for noirlab.edu).
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    base_url: str
    channel_name: str
    search_page_name: str = "page"
    force_insecure_tls: bool = True

    @field_validator("base_url")
    @classmethod
    def _slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


def listing_candidate(item: Any, config: DjangoplicityConfig) -> Candidate:
    """One entry of a search page as a candidate to be resolved at fetch time.

    Raises
    ------
    ProcessingError, InvalidKeyError
        For an entry without an id, or an id that is not safe as a folder name.
    """
    if not isinstance(item, dict) or "id" not in item:
        raise ProcessingError(f"images list entry {str(item)[:120]!r} has no id")
    image_id = validate_id(str(item["id"]))
    return Candidate(
        id=image_id,
        source_type="djangoplicity",
        source_id=image_id,
        title=str(item.get("title") or image_id),
        metadata_url=f"{config.base_url}{quote(image_id)}/api/json/",
        insecure_tls=config.force_insecure_tls,
    )


def _published(info: dict[str, Any]) -> datetime | None:
    return parse_timestamp(info.get("Date"))


def _original_url(info: dict[str, Any], config: DjangoplicityConfig) -> str | None:
    for resource in info.get("Resources") or []:
        original = isinstance(resource, dict) and resource.get("ResourceType") == "Original"
        if original and resource.get("URL"):
            return urljoin(config.base_url, str(resource["URL"]))
    return None


def _avm(info: dict[str, Any]) -> dict[str, Any] | str:
    """The record's ``Spatial.*`` fields as ``wcs_*`` fields, or why there are none."""
    projection = info.get("Spatial.CoordsystemProjection")
    if not isinstance(projection, str) or not projection.strip():
        return "image does not have full WCS (no Spatial.CoordsystemProjection)"
    if projection.strip() != "TAN":
        return f"projection {projection!r} is not TAN"
    missing = [f"Spatial.{k}" for k in SPATIAL if info.get(f"Spatial.{k}") in (None, "", [])]
    if missing:
        return f"image does not have full WCS (no {', '.join(missing)})"
    scale = list(info["Spatial.Scale"]) if isinstance(info["Spatial.Scale"], list) else []
    if len(scale) == 2 and scale[1] in (None, ""):
        # seen in noao-02274; toasty takes a square pixel of the first scale's size
        with contextlib.suppress(TypeError, ValueError):
            scale[1] = abs(float(scale[0]))
    avm: dict[str, Any] = {
        "wcs_projection": "TAN",
        "wcs_reference_value": info["Spatial.ReferenceValue"],
        "wcs_reference_pixel": info["Spatial.ReferencePixel"],
        "wcs_scale": scale or info["Spatial.Scale"],
        "wcs_rotation": info["Spatial.Rotation"],
    }
    if info.get("Spatial.ReferenceDimension") not in (None, "", []):
        avm["wcs_reference_dimension"] = info["Spatial.ReferenceDimension"]
    return avm


def record_candidate(
    listed: Candidate, info: Any, config: DjangoplicityConfig
) -> Candidate | Reject:
    """The complete candidate from an image's ``api/json`` record, or a reject.

    Metadata as toasty writes it: Name from ``Title``, credits (HTML-escaped ``Credit``) and
    credits URL (``ReferenceURL``) on the ImageSet, the HTML-escaped ``Description`` on the
    Place, and the Place's annotation ``{"channel", "itemid", "publishedUTCISO8601"}``.

    Raises
    ------
    ProcessingError
        For a record that is not an object, or an original that is not an http(s) image.
    """
    if not isinstance(info, dict):
        raise ProcessingError(f"{listed.metadata_url}: the record is not a JSON object")
    info = fix_bytes_repr(info)
    url = _original_url(info, config)
    if url is None:
        return Reject(
            id=listed.id, source_id=listed.source_id, reason="no 'Original' resource to fetch"
        )
    avm = _avm(info)
    if isinstance(avm, str):
        return Reject(id=listed.id, source_id=listed.source_id, reason=avm)
    ext = web_picture_extension(url, f"{listed.metadata_url}: the Original resource")
    published = _published(info)
    annotation: dict[str, str] = {"channel": config.channel_name, "itemid": listed.id}
    if published is not None:
        annotation["publishedUTCISO8601"] = published.isoformat()
    return listed.model_copy(
        update={
            "metadata_url": "",
            "image_url": url,
            "image_ext": ext,
            "last_updated": published.isoformat() if published is not None else "",
            "title": str(info.get("Title") or listed.id),
            "credits": html.escape(str(info.get("Credit") or "")),
            "credits_url": str(info.get("ReferenceURL") or ""),
            "description": html.escape(str(info.get("Description") or "")),
            "description_on_place": True,
            "annotation": json.dumps(annotation),
            "avm": avm,
        }
    )


class DjangoplicitySource(ImageSource):
    """The archive at the config's ``djangoplicity.base_url``."""

    source_type = "djangoplicity"
    config_model = DjangoplicityConfig
    section: DjangoplicityConfig

    def page_url(self, n: int) -> str:
        """The ``n``-th (1-based) search page."""
        return (
            f"{self.section.base_url}archive/search/{self.section.search_page_name}/{n}/"
            "?type=Observation"
        )

    def query(self) -> FeedResult:
        """Every id of every search page, up to the first 404 (or an empty page).

        Raises
        ------
        DownloadError
            When the first page cannot be read (nothing can be done then). A later page that
            fails ends the listing with an error report; what was listed is kept.
        """
        result = FeedResult()
        seen: set[str] = set()
        for n in range(1, MAX_PAGES + 1):
            url = self.page_url(n)
            try:
                status, body = get_with_retries(url, verify_tls=not self.section.force_insecure_tls)
                if status == 404:
                    break
                if status != 200:
                    raise DownloadError(f"search page {url}: HTTP {status}")
                items = images_on_page(body.decode("utf-8", errors="replace"), url)
            except DownloadError as exc:
                if n == 1:
                    raise
                result.errors.append(ErrorReport.from_exception(exc, "fetch", [url]))
                break
            if not items:
                break
            for index, item in enumerate(items):
                try:
                    candidate = listing_candidate(item, self.section)
                except (ProcessingError, InvalidKeyError) as exc:
                    label = f"{url} [{index}]"
                    result.errors.append(ErrorReport.from_exception(exc, "fetch", [label]))
                    continue
                if candidate.id in seen:  # the archive grew while we paged: listed twice
                    continue
                seen.add(candidate.id)
                result.candidates.append(candidate)
        return result.without_collisions()

    def resolve(self, candidate: Candidate) -> Candidate | Reject:
        """Read the image's ``api/json`` record (see :func:`record_candidate`).

        Raises
        ------
        DownloadError
            When the record cannot be fetched or is not JSON.
        """
        if not candidate.metadata_url:
            return candidate
        verify = not self.section.force_insecure_tls
        info = get_json(candidate.metadata_url, "record", verify_tls=verify)
        return record_candidate(candidate, info, self.section)
