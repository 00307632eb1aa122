"""The work of the ingest tasks as plain functions, without Prefect (benchmarks and
subprocesses call them directly); :mod:`tasks.ingest` wraps each in a Prefect task.

The repository backends and the sources (fsspec, an HTTP client, YAML) are imported by the
functions that use them: a worker that only tiles does not load them (a tenth of the
imports of a one-image process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from astroflow.models import astroflow_version
from astroflow.models.errors import InvalidKeyError, ProcessingError, WcsError, one_line
from astroflow.models.ingest import (
    Candidate,
    ImageManifest,
    Reject,
    ReviewDecision,
    StretchHints,
)
from astroflow.models.repository import PutTreeResult
from astroflow.processing.fits_tiling import fits_study_tiles, stretch_hints
from astroflow.processing.render import RenderedRows, render
from astroflow.processing.tiling import TILE, count_tiles, study_tiles, thumbnail_box
from astroflow.processing.wcs import (
    avm_to_header,
    flip_rows,
    header_from_wcs,
    orient_top_down,
    placement,
    rescale,
)
from astroflow.storage.disk import require_free
from astroflow.storage.files import file_digest, write_json_atomic
from astroflow.storage.ingest.avm import has_avm
from astroflow.storage.ingest.fits_tiles import write_fits_tiles
from astroflow.storage.ingest.images import (
    DEFAULT_PNG_LEVEL,
    WCS_SIDECAR,
    LoadedImage,
    box_reduce_2x2,
    flip_vertical,
    read_image,
    read_wcs_sidecar,
    write_thumbnail,
    write_tiles,
)
from astroflow.storage.ingest.layout import ImageLayout
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.ingest.workdir import CANDIDATE_FILE, WorkDir
from astroflow.storage.ingest.wtml import PlaceEntry, index_documents, read_place, study_folder
from astroflow.storage.png import encode_png

log = logging.getLogger(__name__)


# -- fetch ----------------------------------------------------------------------------------


def fetch_image(
    candidate: Candidate, repository: RepositoryRef, work_dir: str, *, force: bool = False
) -> str | Reject:
    """Fetch one candidate into ``cache_todo/<id>`` unless it is done, ignored or pending.

    A candidate listed without its details (``metadata_url``: Djangoplicity) is resolved
    from its record first, and only when it is to be fetched.

    Returns
    -------
    str or Reject
        ``"new"`` (downloaded), ``"ignored"`` (``skip.flag``), ``"done"`` (published from the
        same source version), or ``"pending"`` (already fetched or processed, not published);
        a :class:`Reject` when the record says the image cannot be ingested.
    """
    from astroflow.storage.ingest.sources import read_pipeline_config, resolve_candidate

    repo = repository.open()
    wd = WorkDir(work_dir).ensure()
    cid = candidate.id
    layout = ImageLayout(cid)
    if repo.exists(layout.skip_flag):
        return "ignored"
    published = repo.exists(layout.marker)
    manifest: ImageManifest | None = None
    if published:
        try:
            manifest = ImageManifest.model_validate_json(repo.read_bytes(layout.manifest))
        except FileNotFoundError:
            manifest = None  # published by toasty: no manifest, nothing to compare
    if manifest is not None and manifest.source_id != candidate.source_id:
        raise InvalidKeyError(
            f"{candidate.source_id} gives the id {cid!r}, which the repository already holds "
            f"for {manifest.source_id}: not fetched (rename one, or write skip.flag)"
        )
    if not force and published:
        # a source that gives no version (a Djangoplicity listing) has nothing to compare
        unversioned = not candidate.last_updated
        if manifest is None or unversioned or manifest.last_updated == candidate.last_updated:
            return "done"
        log.info(
            "%s changed upstream (%s -> %s): fetching again",
            cid,
            manifest.last_updated,
            candidate.last_updated,
        )
    if not force:
        for stage in ("cache_todo", "out_todo"):
            folder = wd.path(stage, cid)
            if folder.is_dir():
                known = _pending_version(folder)
                if known == candidate.last_updated or not candidate.last_updated:
                    return "pending"
    if candidate.metadata_url:
        resolved = resolve_candidate(read_pipeline_config(repo), candidate)
        if isinstance(resolved, Reject):
            return resolved
        candidate = resolved
    part = wd.partial("cache_todo", cid)
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        _download_into(candidate, part, wd)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)  # a failed fetch leaves nothing behind
        raise
    wd.commit("cache_todo", cid)
    # A stale processed copy of an older version must not be published over the new one.
    shutil.rmtree(wd.path("out_todo", cid), ignore_errors=True)
    return "new"


def _download_into(candidate: Candidate, part: Path, wd: WorkDir) -> None:
    """The candidate's image, its record and its download facts into the ``.partial``
    folder ``part``."""
    from astroflow.storage.ingest.sources import download, reads_local_files

    local_allowed = reads_local_files(candidate.source_type)
    cid = candidate.id
    image_path = part / f"image.{candidate.image_ext}"
    is_http = candidate.image_url.lower().startswith(("http://", "https://"))
    if not is_http and not local_allowed:
        raise ProcessingError(
            f"{candidate.image_url[:200]!r} is not an http(s) URL: a {candidate.source_type} "
            "source may not name local files"
        )
    if is_http:
        # Through the remote data manager: retried, mirrored, size-checked, cached by source
        # version (a re-run after a crash does not download again).
        version = hashlib.sha256(candidate.last_updated.encode()).hexdigest()[:12]
        cached = _remote(wd.root / "downloads", verify_tls=not candidate.insecure_tls).fetch(
            f"{cid}-{version}.{candidate.image_ext}", [candidate.image_url]
        )
        _link_or_copy(cached, image_path)
        sha, nbytes = file_digest(image_path), image_path.stat().st_size
    else:
        sha, nbytes = download(candidate.image_url, image_path)
    if candidate.wcs_url:
        if not local_allowed:
            raise ProcessingError(
                f"a {candidate.source_type} source may not name a WCS sidecar "
                f"({candidate.wcs_url[:200]!r})"
            )
        download(candidate.wcs_url, part / WCS_SIDECAR)
    (part / CANDIDATE_FILE).write_text(candidate.model_dump_json(indent=2), encoding="utf-8")
    write_json_atomic(part / "download.json", {"sha256": sha, "bytes": nbytes})


_REMOTES: dict[tuple[Path, bool], Any] = {}
_REMOTES_LOCK = threading.Lock()


def _remote(cache: Path, *, verify_tls: bool = True) -> Any:
    """One :class:`storage.remote.RemoteData` per download cache and TLS choice (imported
    lazily: tiling alone does not need an HTTP client or a database)."""
    from astroflow.models.settings import Settings
    from astroflow.storage.remote import RemoteData

    with _REMOTES_LOCK:
        if (cache, verify_tls) not in _REMOTES:
            settings = Settings()
            _REMOTES[cache, verify_tls] = RemoteData(
                cache,
                timeout=settings.http_read_timeout,
                retries=settings.http_attempts,
                verify_tls=verify_tls,
            )
        return _REMOTES[cache, verify_tls]


@contextlib.contextmanager
def _named(label: str) -> Iterator[None]:
    """WCS errors raised inside name the user's input once, on one line."""
    try:
        yield
    except WcsError as exc:
        raise WcsError(f"{label}: {one_line(exc)}") from None


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def _pending_version(folder: Path) -> str | None:
    for name in (CANDIDATE_FILE, ImageLayout.MANIFEST):
        path = folder / name
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            return str(data.get("last_updated", ""))
    return None


# -- process --------------------------------------------------------------------------------


def process_image(
    image_id: str,
    work_dir: str,
    publish_url_prefix: str,
    *,
    png_level: int = DEFAULT_PNG_LEVEL,
    workers: int | None = None,
    fits_tiles: str = "fits",
) -> ImageManifest:
    """Turn ``cache_todo/<id>`` into ``out_todo/<id>``, then move the input to ``cache_done``.

    A FITS input becomes WWT's tiled FITS (``fits_tiles="fits"``: float tiles, the WTML's
    data range and cut, a PNG preview of the top level) or 8-bit PNG tiles (``"png"``).
    The WCS is validated before any tiling. On failure the input stays in ``cache_todo`` with
    ``error.txt``, and nothing is left in ``out_todo``.
    """
    wd = WorkDir(work_dir).ensure()
    src = wd.path("cache_todo", image_id)
    part = wd.partial("out_todo", image_id)
    loaded: LoadedImage | None = None
    try:
        candidate = wd.candidate("cache_todo", image_id)
        images = sorted(src.glob("image.*"))
        if not images:
            raise ProcessingError(f"{image_id}: no downloaded image in {src}")
        image_path = images[0]
        label = candidate.image_url  # errors name the user's file or URL, not our copy
        sidecar = src / WCS_SIDECAR if (src / WCS_SIDECAR).is_file() else None
        want_wcs = candidate.avm is None and sidecar is None
        loaded = read_image(image_path, want_wcs=want_wcs, label=label)
        height, width = loaded.pixels.shape[:2]
        # PNG tiles: at most half of their raw RGBA bytes once encoded (measured: far less);
        # FITS tiles: their float32 values and a header
        as_fits = loaded.kind == "fits" and fits_tiles == "fits"
        expected = count_tiles(width, height)
        per_tile = TILE * TILE * 4 + 2 * 2880 if as_fits else TILE * TILE * 2
        require_free(wd.root, expected * per_tile, f"tiling {label} ({expected} tiles)")
        with _named(label):
            header, wcs_source, wcs_note = _wcs_header(
                candidate, loaded, image_path, sidecar, (width, height)
            )
            header, flip = orient_top_down(header, height)
            place = placement(header, width, height)  # validates before any tiling
        pixels = flip_vertical(loaded.pixels) if flip else loaded.pixels
        image = RenderedRows(pixels) if loaded.kind == "fits" else pixels  # 8-bit, alpha last
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        count, hints = _write_study(pixels, image, part, as_fits, workers, png_level)
        del pixels  # (image holds what is still needed)
        write_thumbnail(image, part / ImageLayout.THUMBNAIL, thumbnail_box(width, height))
        loaded.close()  # a FITS input is read band by band from the open file
        folder = study_folder(
            place,
            name=candidate.title or image_id,
            credits=candidate.credits,
            credits_url=candidate.credits_url,
            description=candidate.description,
            description_on_place=candidate.description_on_place,
            annotation=candidate.annotation,
            fits=hints,
        )
        rel, absolute = index_documents(
            folder, f"{publish_url_prefix}{image_id}/", candidate.last_updated
        )
        (part / ImageLayout.INDEX_REL).write_bytes(rel)
        manifest = ImageManifest(
            id=image_id,
            source_type=candidate.source_type,
            source_id=candidate.source_id,
            last_updated=candidate.last_updated,
            input_sha256=_input_digest(src, image_path),
            input_bytes=image_path.stat().st_size,
            width=width,
            height=height,
            tile_levels=place.tile_levels,
            tile_count=count,
            wcs_source=wcs_source,
            wcs_note=wcs_note,
            ignored_avm=loaded.ignored,
            astroflow_version=astroflow_version(),
        )
        (part / ImageLayout.MANIFEST).write_text(
            manifest.model_dump_json(indent=2), encoding="utf-8"
        )
        (part / ImageLayout.MARKER).write_bytes(absolute)
    except BaseException as exc:
        if loaded is not None:
            loaded.close()
        shutil.rmtree(part, ignore_errors=True)
        wd.record_error("cache_todo", image_id, f"{type(exc).__name__}: {exc}")
        raise
    wd.commit("out_todo", image_id)
    (src / "error.txt").unlink(missing_ok=True)
    wd.move("cache_todo", "cache_done", image_id)
    return manifest


def _write_study(
    pixels: Any, image: Any, part: Path, as_fits: bool, workers: int | None, png_level: int
) -> tuple[int, StretchHints | None]:
    """Write the tiles of a study into ``part``: WWT's tiled FITS of a FITS image's values
    (and ``preview.png``, its top level rendered as ``image`` is), or PNG tiles of
    ``image`` (8-bit, alpha last). Returns the tile count and, for tiled FITS, the WTML's
    data range and cut."""
    if not as_fits:
        tiles = study_tiles(image, plain_mean=box_reduce_2x2)
        count, _ = write_tiles(tiles, part, workers=workers, png_level=png_level)
        return count, None
    count, _, top = write_fits_tiles(fits_study_tiles(pixels), part, workers=workers)
    preview = render(top.values, image.vmin, image.vmax)
    (part / ImageLayout.PREVIEW).write_bytes(encode_png(preview, png_level))
    return count, stretch_hints(top)


def _input_digest(folder: Path, image_path: Path) -> str:
    """The sha256 of the fetched image: recorded by the fetch (``download.json``) when it
    describes this very file, else computed (64 MB cost ~0.1-0.3 s here)."""
    try:
        facts = json.loads((folder / "download.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        facts = {}
    if isinstance(facts, dict) and facts.get("bytes") == image_path.stat().st_size:
        sha = facts.get("sha256")
        if isinstance(sha, str) and len(sha) == 64:
            return sha
    return file_digest(image_path)


def _wcs_header(
    candidate: Candidate,
    loaded: LoadedImage,
    image_path: Path,
    sidecar: Path | None,
    size: tuple[int, int],
) -> tuple[dict[str, Any], str, str]:
    """The image's WCS header (rows as stored), what it came from, and a note.

    A WCS sidecar wins over everything (the operator put it there); then the source's
    AVM-like fields (AstroPix, Djangoplicity); then the file's own FITS WCS or AVM tags.

    Returns
    -------
    header, wcs_source, note
        ``wcs_source`` is ``sidecar``, ``feed``, ``fits-header``, ``astrometry`` (a FITS
        file astroflow's solve step placed) or ``avm``.
    """
    width, height = size
    if sidecar is not None:
        name = candidate.wcs_url.rsplit("/", 1)[-1] or sidecar.name
        wcs, made_for = read_wcs_sidecar(sidecar, candidate.wcs_url or str(sidecar))
        header = header_from_wcs(wcs)  # y from the first stored row, as a FITS file's
        if made_for is not None:
            header = rescale(header, made_for, size)
        if loaded.kind == "fits" and loaded.wcs is not None:
            overruled = " (it wins over the FITS header's own WCS)"
        elif loaded.kind == "picture" and has_avm(image_path):
            overruled = " (it wins over the picture's AVM tags)"
        else:
            overruled = ""
        return header, "sidecar", f"placed by the WCS sidecar {name}{overruled}"
    if candidate.avm is not None:
        return avm_to_header(candidate.avm, width, height), "feed", ""
    if loaded.wcs is None:
        raise WcsError("no celestial WCS (FITS header, AVM tags or a WCS sidecar)")
    header = header_from_wcs(loaded.wcs)
    if loaded.kind == "picture":  # AVM counts y from the bottom: rows from the top
        return flip_rows(header, height), "avm", ""
    if loaded.wcs_origin == "astrometry":  # a reduced frame the solve step placed
        return header, "astrometry", "placed by its astrometric solution (astrometry.net)"
    return header, "fits-header", ""


# -- publish --------------------------------------------------------------------------------


def publish_image(image_id: str, repository: RepositoryRef, work_dir: str) -> PutTreeResult:
    """Upload ``out_todo/<id>`` to ``<id>/`` (``index.wtml`` last), then move it to
    ``out_done``."""
    repo = repository.open()
    wd = WorkDir(work_dir)
    result = repo.put_tree(wd.path("out_todo", image_id), image_id, marker=ImageLayout.MARKER)
    wd.move("out_todo", "out_done", image_id)
    return result


def read_published_place(image_id: str, repository: RepositoryRef) -> PlaceEntry | None:
    """The Place of ``<id>/index.wtml``, or None when the image has no marker (unpublished)."""
    repo = repository.open()
    try:
        data = repo.read_bytes(ImageLayout(image_id).marker)
    except FileNotFoundError:
        return None
    if not data.strip():
        return None
    written = None
    if b"LastUpdated" not in data:  # published by toasty: dated by when it was written
        try:
            written = repo.modified(ImageLayout(image_id).marker)
        except FileNotFoundError:
            written = None
    return read_place(image_id, data, written)


# -- the work folder and the repository, around the stages -------------------------------------


def open_stage(work_dir: str, clean: str, listed: str | None = None) -> list[str]:
    """Make the work folder, remove the ``.partial`` folders of stage ``clean`` (left by a
    killed run) and return the ids waiting in stage ``listed`` (none when not given)."""
    wd = WorkDir(work_dir).ensure()
    wd.clean_partials(clean)
    return wd.ids(listed) if listed else []


def record_rejects(work_dir: str, found: list[Reject]) -> None:
    """Add the candidates a source rejected (with the reason) to the work folder's record
    (``astroflow ignore-rejects`` writes their ``skip.flag`` from it)."""
    wd = WorkDir(work_dir)
    rejects = wd.rejects()
    for reject in found:
        rejects[reject.id] = reject
    wd.save_rejects(rejects)


def write_root_index(
    repository: RepositoryRef, places: list[PlaceEntry], folder_name: str, thumbnail_url: str
) -> None:
    """The repository's root ``index.wtml``: every place, newest first."""
    from astroflow.storage.ingest.wtml import root_index

    repository.open().write_bytes(
        ImageLayout.ROOT_INDEX, root_index(places, folder_name, thumbnail_url)
    )


def write_skip_flag(repository: RepositoryRef, image_id: str, reason: str) -> str:
    """``<id>/skip.flag`` holding ``reason``: the image is never fetched again."""
    repository.open().write_text(ImageLayout(image_id).skip_flag, reason.rstrip("\n") + "\n")
    return image_id


def reject_in_review(repository: RepositoryRef, work_dir: str, image_id: str, reason: str) -> str:
    """An image rejected in review: its ``skip.flag`` (with the reason) in the repository,
    its processed folder moved to ``out_rejected``, its decision forgotten."""
    write_skip_flag(repository, image_id, f"rejected in review: {reason}")
    wd = WorkDir(work_dir)
    wd.move("out_todo", "out_rejected", image_id)
    wd.forget_decision(image_id)
    return image_id


def open_review(work_dir: str) -> list[str]:
    """Turn review on for the work folder (publish then takes approved images only) and
    return the processed images waiting for a decision."""
    wd = WorkDir(work_dir).ensure()
    wd.enable_review()
    decided = wd.decisions()
    return [i for i in wd.ids("out_todo") if i not in decided]


def record_decisions(work_dir: str, decisions: list[ReviewDecision]) -> list[ReviewDecision]:
    """Record operators' verdicts (``review/<id>.json``)."""
    wd = WorkDir(work_dir)
    for decision in decisions:
        wd.decide(decision)
    return decisions


def ensure_source(
    repository: RepositoryRef,
    source_type: str,
    section: dict[str, Any],
    publish_url_prefix: str,
    folder_name: str,
) -> bool:
    """Write the repository's pipeline config for a ``source_type`` source (its config
    ``section``) if it has none; refuse a config of another source type (it belongs to another
    pipeline). Returns whether it was written.

    Raises
    ------
    ConfigError
        When the repository's config names another source type.
    """
    import yaml

    from astroflow.models.errors import ConfigError
    from astroflow.models.ingest import CONFIG_FILE
    from astroflow.storage.ingest.sources import read_pipeline_config

    repo = repository.open()
    if repo.exists(CONFIG_FILE):
        config = read_pipeline_config(repo)
        if config.source_type != source_type:
            raise ConfigError(
                f"{repo.url}/{CONFIG_FILE} has source_type {config.source_type!r}; this flow "
                f"needs a repository whose source is {source_type!r}"
            )
        return False
    repo.ensure()
    config = {
        "source_type": source_type,
        "publish_url_prefix": publish_url_prefix,
        "folder_name": folder_name,
        "folder_thumbnail_url": "",
        source_type: section,
    }
    repo.write_text(CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
    return True
