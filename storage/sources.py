"""Image sources (AstroPix JSON feed, a folder) and the pipeline config in the repository."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from pydantic import ValidationError

from astroflow.models.errors import (
    ConfigError,
    DownloadError,
    ErrorReport,
    InvalidKeyError,
    ProcessingError,
)
from astroflow.models.ingest import CONFIG_FILE, Candidate, PipelineConfig, Reject
from astroflow.storage.files import atomic_write
from astroflow.storage.images import IMAGE_SUFFIXES, image_kind
from astroflow.storage.keys import safe_id, validate_id
from astroflow.storage.repository import Repository
from astroflow.storage.retry import RetryPolicy, is_transient_status

log = logging.getLogger(__name__)

EXTENSION_REMAPPING = {"jpeg": "jpg", "tif": "tiff"}
CONNECT_TIMEOUT, READ_TIMEOUT = 30.0, 120.0  # seconds, for feed queries


def read_pipeline_config(repo: Repository) -> PipelineConfig:
    """Read and validate ``toasty-pipeline-config.yaml`` at the repository root.

    Raises
    ------
    ConfigError
        Naming the file and the offending key.
    """
    where = f"{repo.url}/{CONFIG_FILE}"
    try:
        text = repo.read_text(CONFIG_FILE)
    except FileNotFoundError:
        raise ConfigError(
            f"{where} does not exist: the repository needs a pipeline config"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None


# -- HTTP ---------------------------------------------------------------------------------


FEED_RETRY = RetryPolicy(attempts=4, backoff=0.5)


def _get_with_retries(url: str, policy: RetryPolicy = FEED_RETRY) -> tuple[int, bytes]:
    """GET ``url`` (redirects followed, timeouts set); connection errors, timeouts, 5xx and 429
    are retried under ``policy``. Returns the status and body of the answer.

    Raises
    ------
    DownloadError
        When the last attempt failed too (its reason in the message).
    """
    from astroflow.storage import http  # urllib3: loaded only when a feed is queried
    from astroflow.storage.remote.transport import ConnectionFaultError, TransportError

    pool = http.pool(http.proxy_for(url), connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)

    def attempt() -> tuple[int, bytes]:
        try:
            resp = pool.request("GET", url)
        except http.Error as exc:
            raise ConnectionFaultError(url, http.describe(exc)) from None
        if is_transient_status(resp.status):
            raise TransportError(url, f"HTTP {resp.status}", status=resp.status)
        return resp.status, resp.data

    try:
        return policy.with_transient(ConnectionFaultError).call(attempt, what=f"feed query {url}")
    finally:
        pool.clear()


@dataclass
class FeedResult:
    """Candidates, rejects and per-entry errors from one query of a source."""

    candidates: list[Candidate] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    errors: list[ErrorReport] = field(default_factory=list)


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
    ext = str(url).rsplit(".", 1)[-1].lower().split("?")[0]
    ext = EXTENSION_REMAPPING.get(ext, ext)
    credits_url = item.get("reference_url") or (
        f"http://astropix.ipac.caltech.edu/image/{quote(publisher)}/{quote(image_id)}"
    )
    avm = {k: v for k, v in item.items() if k.startswith("wcs_")}
    return Candidate(
        id=uid,
        source_type="astropix",
        source_id=source_id,
        last_updated=str(item.get("last_updated") or ""),
        image_url=str(url),
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
    status, body = _get_with_retries(url)
    if status != 200:
        raise DownloadError(f"feed {url}: HTTP {status}")
    try:
        feed = json.loads(body)
    except ValueError as exc:
        raise DownloadError(f"feed {url} is not JSON: {exc}") from exc
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
    return result


def _mtime(info: dict[str, Any]) -> str:
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        else:
            stamp = datetime.fromtimestamp(float(value), UTC)
        return stamp.isoformat(timespec="seconds")
    return ""


def query_folder(url: str) -> FeedResult:
    """Candidates from a folder (local path or fsspec URL) of FITS and AVM-tagged pictures.

    Ids are the sanitised file stems (lower case); ``last_updated`` is the file's modification
    time. Two files giving the same id are both reported as errors.
    """
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        raise DownloadError(f"source folder {url} does not exist") from None
    result = FeedResult()
    seen: dict[str, str] = {}
    for info in sorted(entries, key=lambda e: e["name"]):
        if info.get("type") != "file":
            continue
        name = info["name"].rsplit("/", 1)[-1]
        if image_kind(name) is None:
            continue
        stem = name
        for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
            if name.lower().endswith(suffix):
                stem = name[: -len(suffix)]
                ext = suffix.lstrip(".")
                break
        file_url = fs.unstrip_protocol(info["name"])
        try:
            uid = safe_id(stem.lower())
        except InvalidKeyError as exc:
            result.errors.append(ErrorReport.from_exception(exc, "fetch", [file_url]))
            continue
        if uid in seen:
            err = InvalidKeyError(f"{name} and {seen[uid]} both give the id {uid!r}")
            result.errors.append(ErrorReport.from_exception(err, "fetch", [file_url]))
            continue
        seen[uid] = name
        result.candidates.append(
            Candidate(
                id=uid,
                source_type="folder",
                source_id=file_url,
                last_updated=_mtime(info),
                image_url=file_url,
                image_ext=ext,
                title=stem,
            )
        )
    return result


def query_workspace(path: str, session: str | None = None) -> FeedResult:
    """Reduced science frames of an organiser workspace whose status is ``pass``.

    Ids are the lower-cased product names; ``last_updated`` is the product file's modification
    time (so a re-reduced frame is published again).
    """
    from astroflow.storage import catalog
    from astroflow.storage.workspace import Workspace

    ws = Workspace.at(Path(path).expanduser().resolve())
    if not ws.has_database():
        raise DownloadError(f"workspace {ws.root} has no organiser database: run `astroflow prep`")
    try:
        session = ws.resolve_session(session)
    except ConfigError as exc:
        raise DownloadError(str(exc)) from None
    db = ws.database()
    statuses = catalog.statuses(db, session)
    _, products = catalog.load_plan(db)
    result = FeedResult()
    for product in products:
        if product.recipe != "reduce" or statuses.get(product.name) != "pass":
            continue
        file = ws.product_path(session, product.filepath)
        if not file.exists():
            continue
        try:
            uid = safe_id(product.name.lower())
        except InvalidKeyError as exc:
            result.errors.append(ErrorReport.from_exception(exc, "fetch", [product.name]))
            continue
        stamp = datetime.fromtimestamp(file.stat().st_mtime, UTC).isoformat(timespec="seconds")
        result.candidates.append(
            Candidate(
                id=uid,
                source_type="workspace",
                source_id=f"{session}/{product.name}",
                last_updated=stamp,
                image_url=str(file),
                image_ext="fits",
                title=product.name,
                description=f"{product.tag}, night {product.night}",
            )
        )
    return result


def query_source(config: PipelineConfig) -> FeedResult:
    """Ask the configured source for its candidates."""
    if config.source_type == "astropix":
        assert config.astropix is not None
        return query_astropix(config.astropix.json_query_url)
    if config.source_type == "workspace":
        assert config.workspace is not None
        return query_workspace(config.workspace.path, config.workspace.session)
    assert config.folder is not None
    return query_folder(config.folder.path)


def download(url: str, dest: Path) -> tuple[str, int]:
    """Copy a file from a local path or any fsspec URL to ``dest`` atomically.

    HTTP(S) downloads go through :class:`storage.remote.RemoteData` (retries, mirrors, size
    checks, cache) instead.

    Returns
    -------
    sha256, nbytes

    Raises
    ------
    DownloadError
        For an unreadable source or an empty (0-byte) file; ``dest`` is then not created.
    """
    import fsspec

    if urlsplit(url).scheme.lower() in ("http", "https"):
        raise DownloadError(f"{url}: HTTP downloads go through RemoteData")
    digest = hashlib.sha256()
    nbytes = 0
    try:
        with fsspec.open(url, "rb") as src, atomic_write(dest) as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                nbytes += len(chunk)
            if nbytes == 0:
                raise DownloadError(f"{url}: empty (0-byte) file")
    except DownloadError:
        raise
    except Exception as exc:
        raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc
    return digest.hexdigest(), nbytes
