"""The ``astropix`` source: an AstroPix-style JSON feed over HTTP(S)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from astroflow.models.errors import DownloadError, ErrorReport, InvalidKeyError, ProcessingError
from astroflow.models.ingest import Candidate, Reject
from astroflow.storage.ingest.sources.base import FeedResult, ImageSource, web_picture_extension
from astroflow.storage.ingest.sources.web import get_json
from astroflow.storage.keys import validate_id


class AstroPixConfig(BaseModel):
    """The ``astropix`` section: where the AstroPix-style JSON feed lives."""

    model_config = ConfigDict(frozen=True, extra="allow")

    json_query_url: str


def astropix_candidate(item: Any) -> Candidate | Reject:
    """One AstroPix feed entry as a candidate, or a reject (``/`` in the id, non-TAN).

    Raises
    ------
    ProcessingError, InvalidKeyError
        For a malformed entry or an id that is not safe.
    """
    if not isinstance(item, dict):
        raise ProcessingError(f"feed entry is a {type(item).__name__}, not an object")
    try:
        publisher = str(item["publisher_id"])
        image_id = str(item["image_id"])
    except KeyError as exc:
        raise ProcessingError(f"feed entry has no {exc.args[0]!r}") from None
    if not image_id.strip() or not publisher.strip():
        raise ProcessingError("feed entry has an empty publisher_id or image_id")
    lower = image_id.lower()
    uid = f"{publisher}_{lower}".replace("/", "_")
    source_id = f"{publisher}/{image_id}"
    if "/" in image_id:
        return Reject(
            id=uid, source_id=source_id, reason="AstroPix ids with '/' are not retrievable"
        )
    if item.get("wcs_projection") != "TAN":
        return Reject(
            id=uid,
            source_id=source_id,
            reason=f"projection {item.get('wcs_projection')!r} is not TAN",
        )
    validate_id(uid)
    url = item.get("resource_url") or (
        "http://astropix.ipac.caltech.edu/archive/"
        f"{quote(publisher)}/{quote(lower)}/{quote(publisher + '_' + lower)}_original.jpg"
    )
    url = str(url)
    ext = web_picture_extension(url, "resource_url")
    credits_url = item.get("reference_url") or (
        f"http://astropix.ipac.caltech.edu/image/{quote(publisher)}/{quote(image_id)}"
    )
    avm = {k: v for k, v in item.items() if k.startswith("wcs_")}
    return Candidate(
        id=uid,
        source_type="astropix",
        source_id=source_id,
        last_updated=str(item.get("last_updated") or ""),
        image_url=url,
        image_ext=ext,
        title=str(item.get("title") or uid),
        credits=str(item.get("image_credit") or ""),
        credits_url=str(credits_url),
        description=str(item.get("description") or ""),
        avm=avm,
    )


def query_astropix(url: str) -> FeedResult:
    """Query an AstroPix JSON feed (a list of entries); 5xx answers are retried.

    Raises
    ------
    DownloadError
        When the feed cannot be fetched or is not a JSON list (nothing can be done then).
    """
    feed = get_json(url, "feed")
    if not isinstance(feed, list):
        raise DownloadError(f"feed {url} is not a JSON list of images")
    result = FeedResult()
    for index, item in enumerate(feed):
        label = f"feed[{index}]"
        if isinstance(item, dict) and "image_id" in item:
            label = f"{item.get('publisher_id', '?')}/{item['image_id']}"
        try:
            got = astropix_candidate(item)
        except (ProcessingError, InvalidKeyError) as exc:
            result.errors.append(ErrorReport.from_exception(exc, "fetch", [str(label)[:200]]))
            continue
        (result.rejects if isinstance(got, Reject) else result.candidates).append(got)
    return result.without_collisions()


class AstroPixSource(ImageSource):
    """The feed at the config's ``astropix.json_query_url``."""

    source_type = "astropix"
    config_model = AstroPixConfig
    section: AstroPixConfig

    def query(self) -> FeedResult:
        return query_astropix(self.section.json_query_url)
