"""The ``folder`` source: FITS and AVM-tagged pictures in a folder (a path or fsspec URL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from astroflow.models.errors import DownloadError, ErrorReport, InvalidKeyError, ProcessingError
from astroflow.models.ingest import Candidate
from astroflow.storage.ingest.images import IMAGE_SUFFIXES, SIDECAR_SUFFIXES, image_kind
from astroflow.storage.ingest.sources.base import FeedResult, ImageSource
from astroflow.storage.keys import safe_id


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


def _follow_link(path: Path, root: Path) -> dict[str, Any]:
    """The file info of what the symbolic link ``path`` points to, which must be a file under
    ``root`` (the resolved source folder).

    Raises
    ------
    ProcessingError
        For a broken link, a loop, or a link that leaves the source folder (never read).
    """
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a loop (Python < 3.13)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ProcessingError(f"{path}: broken symbolic link or link loop ({reason})") from None
    if not real.is_relative_to(root):
        raise ProcessingError(
            f"{path}: links to {real}, outside the source folder {root}: not read"
        )
    st = real.stat()
    kind = "file" if real.is_file() else "directory"
    return {"name": str(real), "type": kind, "mtime": st.st_mtime, "size": st.st_size}


def _followed(info: dict[str, Any], local_root: Path | None) -> dict[str, Any]:
    """``info``, or the info of the file it links to inside a local source folder
    (:func:`_follow_link`, which raises for any other link)."""
    if local_root is not None and Path(info["name"]).is_symlink():
        return _follow_link(Path(info["name"]), local_root)
    return info


_BY_LENGTH = sorted(IMAGE_SUFFIXES, key=len, reverse=True)  # .fits.gz before .gz


def _split(name: str) -> tuple[str, str]:
    """The stem and image extension of a file name (``M42.fits.gz`` -> ``M42``, ``fits.gz``)."""
    for suffix in _BY_LENGTH:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], suffix.lstrip(".")
    return name, ""


def _sidecars(names: list[str]) -> dict[str, str]:
    """WCS sidecars by the image they place: ``m42.jpg`` -> ``m42.wcs.fits`` (or
    ``m42_wcs.fits``). A ``*_wcs.fits`` without an image of its stem is an image itself."""
    stems: dict[str, str] = {}
    for name in names:
        if image_kind(name) is not None and not name.lower().endswith(SIDECAR_SUFFIXES):
            stems.setdefault(_split(name)[0], name)
    found: dict[str, str] = {}
    for name in names:
        for suffix in SIDECAR_SUFFIXES:
            if name.lower().endswith(suffix) and name[: -len(suffix)] in stems:
                found.setdefault(stems[name[: -len(suffix)]], name)
    return found


def query_folder(url: str) -> FeedResult:
    """Candidates from a folder (local path or fsspec URL) of FITS and AVM-tagged pictures.

    Ids are the sanitised file stems (lower case); ``last_updated`` is the file's modification
    time. Two files giving the same id (``onepix.fits``, ``onepix.png``) are both reported as
    errors. In a local folder, symbolic links to files inside the folder are followed (the
    file they point to is read); broken links, loops and links that leave the folder are
    reported, never read.

    A picture with a WCS sidecar beside it (``m42.jpg`` and ``m42.wcs.fits`` or
    ``m42_wcs.fits``: a FITS header for the picture's pixel grid, as toasty's
    ``--fits-wcs``) is placed by the sidecar; ``last_updated`` is then the newer of the two.
    """
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(url)
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        raise DownloadError(f"source folder {url} does not exist") from None
    local_root = Path(root).resolve() if isinstance(fs, LocalFileSystem) else None
    result = FeedResult()
    entries = sorted(entries, key=lambda e: e["name"])
    sidecars = _sidecars([e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries])
    by_name = {e["name"].rstrip("/").rsplit("/", 1)[-1]: e for e in entries}
    for info in entries:
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        if image_kind(name) is None or name in sidecars.values():
            continue
        try:
            info = _followed(info, local_root)
        except ProcessingError as exc:
            result.errors.append(ErrorReport.from_exception(exc, "fetch", [info["name"]]))
            continue
        if info.get("type") != "file":
            continue
        stem, ext = _split(name)
        file_url = fs.unstrip_protocol(info["name"])
        try:
            uid = safe_id(stem.lower())
        except InvalidKeyError as exc:
            result.errors.append(ErrorReport.from_exception(exc, "fetch", [file_url]))
            continue
        last_updated, wcs_url = _mtime(info), ""
        if name in sidecars:
            try:
                side = _followed(by_name[sidecars[name]], local_root)
            except ProcessingError as exc:
                result.errors.append(ErrorReport.from_exception(exc, "fetch", [file_url]))
                continue
            wcs_url = fs.unstrip_protocol(side["name"])
            last_updated = max(last_updated, _mtime(side))  # a new sidecar re-places the image
        result.candidates.append(
            Candidate(
                id=uid,
                source_type="folder",
                source_id=fs.unstrip_protocol(str(Path(root) / name))
                if local_root is not None
                else file_url,
                last_updated=last_updated,
                image_url=file_url,
                image_ext=ext,
                title=stem,
                wcs_url=wcs_url,
            )
        )
    return result.without_collisions()


class FolderSourceConfig(BaseModel):
    """The ``folder`` section: a folder (any fsspec URL) of FITS and AVM-tagged images."""

    model_config = ConfigDict(frozen=True, extra="allow")

    path: str


class FolderSource(ImageSource):
    """The folder at the config's ``folder.path``."""

    source_type = "folder"
    config_model = FolderSourceConfig
    reads_local_files = True
    section: FolderSourceConfig

    def query(self) -> FeedResult:
        return query_folder(self.section.path)
