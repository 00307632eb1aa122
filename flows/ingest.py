"""The ingest flows: ``fetch-images``, ``process-images``, ``publish-images``,
``reindex-repository`` and ``ingest-images`` (the four in order).

Parameters are flat and typed so that they form the Prefect UI's run form and work with
``prefect deployment run -p name=value``. Every stage isolates failures per image: they go into
the returned summary's error stack and a markdown artifact, and the other images carry on.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from prefect import flow, get_run_logger, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from astroflow.flows.common import collect, publish_errors
from astroflow.models.errors import (
    ErrorReport,
    ErrorStack,
    InvalidKeyError,
    RepositoryUnreachableError,
)
from astroflow.models.ingest import MARKER, StageSummary
from astroflow.storage.images import DEFAULT_PNG_LEVEL
from astroflow.storage.keys import validate_id
from astroflow.storage.repository import open_repository
from astroflow.storage.sources import query_source, read_pipeline_config
from astroflow.storage.workdir import WorkDir
from astroflow.storage.wtml import root_index
from astroflow.tasks.ingest import (
    fetch_image_task,
    process_image_task,
    publish_image_task,
    read_place_task,
)


@flow(name="fetch-images", task_runner=ThreadPoolTaskRunner(max_workers=8))
def fetch_images(
    repository: str,
    work_dir: str,
    azure_conn_env: str | None = None,
    force: bool = False,
    limit: int | None = None,
) -> StageSummary:
    """Download new or changed images from the repository's configured source.

    Parameters
    ----------
    repository
        Repository URL or local path (holds ``toasty-pipeline-config.yaml``).
    work_dir
        Local work directory; images land in ``cache_todo/<id>/``.
    azure_conn_env
        Name of the environment variable holding the Azure connection string.
    force
        Fetch every candidate again, even those already published or pending.
    limit
        Fetch at most this many candidates (in feed order).
    """
    logger = get_run_logger()
    repo = open_repository(repository, azure_conn_env=azure_conn_env)
    config = read_pipeline_config(repo)
    wd = WorkDir(work_dir).ensure()
    wd.clean_partials("cache_todo")
    feed = query_source(config)
    candidates = feed.candidates[:limit] if limit is not None else feed.candidates
    rejects = wd.rejects()
    for reject in feed.rejects:
        rejects[reject.id] = reject
    wd.save_rejects(rejects)
    futures = fetch_image_task.map(
        candidates,
        unmapped(repository),
        unmapped(work_dir),
        unmapped(azure_conn_env),
        unmapped(force),
    )
    outcomes, errors = collect(futures, [c.id for c in candidates], "fetch")
    errors = ErrorStack(reports=tuple(feed.errors)) + errors
    summary = StageSummary(
        stage="fetch",
        new=tuple(i for i, o in outcomes.items() if o == "new"),
        skipped=tuple(i for i, o in outcomes.items() if o != "new"),
        failed=tuple(errors.failed_inputs()),
        rejected=tuple(r.id for r in feed.rejects),
        errors=errors,
    )
    logger.info("%s", summary.line())
    publish_errors(errors, "fetch-errors", "Fetch errors")
    return summary


@flow(name="process-images", task_runner=ThreadPoolTaskRunner(max_workers=2))
def process_images(
    repository: str,
    work_dir: str,
    azure_conn_env: str | None = None,
    png_level: int = DEFAULT_PNG_LEVEL,
    tile_workers: int | None = None,
) -> StageSummary:
    """Tile every fetched image (``cache_todo``) into ``out_todo/<id>/``.

    Parameters
    ----------
    png_level
        zlib level of the PNG tiles (0-9; 1 is the measured best trade-off).
    tile_workers
        Threads encoding PNG tiles per image (default: one per CPU).
    """
    logger = get_run_logger()
    repo = open_repository(repository, azure_conn_env=azure_conn_env)
    config = read_pipeline_config(repo)
    wd = WorkDir(work_dir).ensure()
    wd.clean_partials("out_todo")
    ids = wd.ids("cache_todo")
    futures = process_image_task.map(
        ids,
        unmapped(work_dir),
        unmapped(config.publish_url_prefix),
        unmapped(png_level),
        unmapped(tile_workers),
    )
    done, errors = collect(futures, ids, "process")
    summary = StageSummary(
        stage="process", done=tuple(done), failed=tuple(errors.failed_inputs()), errors=errors
    )
    logger.info("%s", summary.line())
    publish_errors(errors, "process-errors", "Process errors")
    return summary


@flow(name="publish-images", task_runner=ThreadPoolTaskRunner(max_workers=4))
def publish_images(
    repository: str, work_dir: str, azure_conn_env: str | None = None
) -> StageSummary:
    """Upload every processed image (``out_todo``) to the repository, ``index.wtml`` last.

    A repository that does not answer stops the run (it fails, nothing is marked published):
    before the first upload, or as soon as the repository's circuit breaker opens.
    """
    logger = get_run_logger()
    open_repository(repository, azure_conn_env=azure_conn_env).require_reachable()
    wd = WorkDir(work_dir).ensure()
    wd.clean_partials("out_todo")
    ids = wd.ids("out_todo")
    futures = publish_image_task.map(
        ids, unmapped(repository), unmapped(work_dir), unmapped(azure_conn_env)
    )
    done, errors = collect(futures, ids, "publish")
    summary = StageSummary(
        stage="publish", done=tuple(done), failed=tuple(errors.failed_inputs()), errors=errors
    )
    logger.info("%s", summary.line())
    publish_errors(errors, "publish-errors", "Publish errors")
    unreachable = [r for r in errors.reports if r.error_type == RepositoryUnreachableError.__name__]
    if unreachable:
        raise RepositoryUnreachableError(
            f"{unreachable[0].message} ({len(done)} image(s) published, "
            f"{len(summary.failed)} not: the run could not proceed)"
        )
    return summary


@flow(name="reindex-repository", task_runner=ThreadPoolTaskRunner(max_workers=16))
def reindex_repository(repository: str, azure_conn_env: str | None = None) -> StageSummary:
    """Rewrite the repository's root ``index.wtml`` from every published image, newest first.

    An image folder without a non-empty ``index.wtml`` (unpublished, or mid-upload) is not
    indexed.
    """
    logger = get_run_logger()
    repo = open_repository(repository, azure_conn_env=azure_conn_env)
    config = read_pipeline_config(repo)
    folders = repo.list_folders()
    ids: list[str] = []
    reports: list[ErrorReport] = []
    for name in folders:
        try:
            ids.append(validate_id(name))
        except InvalidKeyError as exc:
            reports.append(ErrorReport.from_exception(exc, "reindex", [name]))
    futures = read_place_task.map(ids, unmapped(repository), unmapped(azure_conn_env))
    entries, errors = collect(futures, ids, "reindex")
    errors = ErrorStack(reports=tuple(reports)) + errors
    places = [e for e in entries.values() if e is not None]
    repo.write_bytes(MARKER, root_index(places, config.folder_name, config.folder_thumbnail_url))
    summary = StageSummary(
        stage="reindex",
        done=tuple(e.image_id for e in places),
        skipped=tuple(i for i, e in entries.items() if e is None),
        failed=tuple(errors.failed_inputs()),
        errors=errors,
    )
    logger.info("%s", summary.line())
    publish_errors(errors, "reindex-errors", "Reindex errors")
    return summary


@flow(name="ingest-images")
def ingest_images(
    repository: str,
    work_dir: str,
    azure_conn_env: str | None = None,
    force: bool = False,
    limit: int | None = None,
    png_level: int = DEFAULT_PNG_LEVEL,
    tile_workers: int | None = None,
) -> list[StageSummary]:
    """fetch -> process -> publish -> reindex, each stage a subflow."""
    return [
        fetch_images(repository, work_dir, azure_conn_env, force=force, limit=limit),
        process_images(
            repository, work_dir, azure_conn_env, png_level=png_level, tile_workers=tile_workers
        ),
        publish_images(repository, work_dir, azure_conn_env),
        reindex_repository(repository, azure_conn_env),
    ]


def ignore_rejects(
    repository: str, work_dir: str, azure_conn_env: str | None = None
) -> tuple[list[str], ErrorStack]:
    """Write ``<id>/skip.flag`` (holding the reason) for every recorded reject."""
    repo = open_repository(repository, azure_conn_env=azure_conn_env)
    written: list[str] = []
    reports: list[ErrorReport] = []

    def _one(item: tuple[str, str]) -> str:
        rid, text = item
        repo.write_text(f"{validate_id(rid)}/skip.flag", text)
        return rid

    items = [
        (rid, f"{r.source_id}: {r.reason}\n") for rid, r in WorkDir(work_dir).rejects().items()
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(rid, pool.submit(_one, (rid, text))) for rid, text in items]
        for rid, fut in futures:
            try:
                written.append(fut.result())
            except Exception as exc:
                reports.append(ErrorReport.from_exception(exc, "ignore-rejects", [rid]))
    return written, ErrorStack(reports=tuple(reports))
