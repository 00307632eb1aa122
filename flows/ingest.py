"""The ingest flows: ``fetch-images``, ``process-images``, ``publish-images``,
``reindex-repository`` and ``ingest-images`` (the four in order).

Parameters are flat and typed so that they form the Prefect UI's run form and work with
``prefect deployment run -p name=value``. Every stage isolates failures per image: they go into
the returned summary's error stack and a markdown artifact, and the other images carry on.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from astroflow.flows import params, report
from astroflow.flows import review as reviewing
from astroflow.flows.common import collect, publish_errors
from astroflow.flows.locks import one_run_at_a_time
from astroflow.flows.names import run_name
from astroflow.flows.runners import make_task_runner
from astroflow.models.errors import (
    AstroflowError,
    ErrorReport,
    ErrorStack,
    InvalidKeyError,
    NoncriticalProcessingError,
    RepositoryUnreachableError,
    ReviewTimeoutError,
)
from astroflow.models.ingest import Reject, StageSummary
from astroflow.storage.ingest.images import DEFAULT_PNG_LEVEL
from astroflow.storage.ingest.layout import ImageLayout
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.ingest.sources import query_source, read_pipeline_config
from astroflow.storage.ingest.workdir import WorkDir
from astroflow.storage.keys import validate_id
from astroflow.tasks.ingest import (
    fetch_image_task,
    open_review_task,
    open_stage_task,
    process_image_task,
    publish_image_task,
    read_place_task,
    record_decisions_task,
    record_rejects_task,
    reject_image_task,
    write_root_index_task,
)
from astroflow.tasks.ingest_work import write_skip_flag


@flow(
    name="fetch-images",
    flow_run_name=run_name("fetch", "repository"),
    task_runner=ThreadPoolTaskRunner(max_workers=8),
)
@one_run_at_a_time("work_dir", "work folder")
def fetch_images(
    repository: params.Repository,
    work_dir: params.WorkDir,
    azure_conn_env: params.AzureConnEnv = None,
    azure_block: params.AzureBlock = None,
    force: params.Force = False,
    limit: params.Limit = None,
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
    repo = RepositoryRef.of(repository, azure_conn_env, azure_block)
    config = read_pipeline_config(repo.open())
    open_stage_task(work_dir, "cache_todo")
    feed = query_source(config)
    candidates = feed.candidates[:limit] if limit is not None else feed.candidates
    futures = fetch_image_task.map(candidates, unmapped(repo), unmapped(work_dir), unmapped(force))
    outcomes, errors = collect(futures, [c.id for c in candidates], "fetch")
    errors = ErrorStack(reports=tuple(feed.errors)) + errors
    # rejected by the query, or by the image's record when it was read at fetch time
    found = [*feed.rejects, *(o for o in outcomes.values() if isinstance(o, Reject))]
    record_rejects_task(work_dir, found)
    summary = StageSummary(
        stage="fetch",
        new=tuple(i for i, o in outcomes.items() if o == "new"),
        skipped=tuple(i for i, o in outcomes.items() if isinstance(o, str) and o != "new"),
        failed=tuple(errors.failed_inputs()),
        rejected=tuple(r.id for r in found),
        reject_reasons={r.id: r.reason for r in found},
        errors=errors,
    )
    return end_stage(summary, "Fetch")


@flow(name="process-images", flow_run_name=run_name("process", "repository"))
@one_run_at_a_time("work_dir", "work folder")
def process_images(
    repository: params.Repository,
    work_dir: params.WorkDir,
    azure_conn_env: params.AzureConnEnv = None,
    azure_block: params.AzureBlock = None,
    png_level: params.PngLevel = DEFAULT_PNG_LEVEL,
    tile_workers: params.TileWorkers = None,
    task_runner: params.TaskRunner = "threads",
) -> StageSummary:
    """Tile every fetched image (``cache_todo``) into ``out_todo/<id>/``.

    Parameters
    ----------
    png_level
        Deflate level of the PNG tiles (0-9: 1-3 ISA-L's, the others zlib's; 1 is the measured
        best trade-off).
    tile_workers
        Threads encoding PNG tiles per image (default: one per CPU).
    task_runner
        Where the images are tiled: ``threads`` (two at a time in this process),
        ``dask-local`` (a Dask LocalCluster of 2 worker processes) or ``tcp://host:port`` (a
        Dask scheduler whose workers see the work folder at the same path).
    """
    config = read_pipeline_config(RepositoryRef.of(repository, azure_conn_env, azure_block).open())
    ids = open_stage_task(work_dir, "out_todo", "cache_todo")
    runner = make_task_runner(task_runner)
    summary = tile_images.with_options(task_runner=runner)(
        ids, work_dir, config.publish_url_prefix, png_level, tile_workers, config.fits_tiles
    )
    return end_stage(summary, "Process")


@flow(name="tile-images")
def tile_images(
    ids: list[str],
    work_dir: str,
    publish_url_prefix: str,
    png_level: int,
    tile_workers: int | None,
    fits_tiles: str = "fits",
) -> StageSummary:
    """One ``process-image`` task per fetched image, on the task runner ``process-images``
    chose; AVM tags left out of an image become noncritical reports. FITS inputs become
    tiled FITS or PNG tiles as the repository's config says (``fits_tiles``)."""
    futures = process_image_task.map(
        ids,
        unmapped(work_dir),
        unmapped(publish_url_prefix),
        unmapped(png_level),
        unmapped(tile_workers),
        unmapped(fits_tiles),
    )
    done, errors = collect(futures, ids, "process")
    errors += ignored_tags(done)
    return StageSummary(
        stage="process", done=tuple(done), failed=tuple(errors.failed_inputs()), errors=errors
    )


@flow(
    name="publish-images",
    flow_run_name=run_name("publish", "repository"),
    task_runner=ThreadPoolTaskRunner(max_workers=4),
)
@one_run_at_a_time("work_dir", "work folder")
def publish_images(
    repository: params.Repository,
    work_dir: params.WorkDir,
    azure_conn_env: params.AzureConnEnv = None,
    azure_block: params.AzureBlock = None,
) -> StageSummary:
    """Upload every processed image (``out_todo``) to the repository, ``index.wtml`` last.

    A repository that does not answer stops the run (it fails, nothing is marked published):
    before the first upload, or as soon as the repository's circuit breaker opens.
    """
    logger = get_run_logger()
    repo = RepositoryRef.of(repository, azure_conn_env, azure_block)
    repo.open().require_reachable()
    ids = open_stage_task(work_dir, "out_todo", "out_todo")
    wd = WorkDir(work_dir)
    waiting: list[str] = []
    if wd.review_enabled:  # reviewed work dir: approved images only, rejected ones flagged
        decisions = wd.decisions()
        reject_images(repo, work_dir, decisions)
        waiting = [i for i in ids if i not in decisions]
        ids = [i for i in ids if i in decisions and decisions[i].decision == "approved"]
    futures = publish_image_task.map(ids, unmapped(repo), unmapped(work_dir))
    done, errors = collect(futures, ids, "publish")
    summary = StageSummary(
        stage="publish",
        done=tuple(done),
        skipped=tuple(waiting),
        failed=tuple(errors.failed_inputs()),
        errors=errors,
    )
    if waiting:
        logger.info("%d image(s) wait for review: %s", len(waiting), ", ".join(waiting))
    stage_report(summary, "Publish", [published_section(repo, done)])
    unreachable = [r for r in errors.reports if r.error_type == RepositoryUnreachableError.__name__]
    if unreachable:
        raise RepositoryUnreachableError(
            f"{unreachable[0].message} ({len(done)} image(s) published, "
            f"{len(summary.failed)} not: the run could not proceed)"
        )
    return report.finish(
        summary.line(),
        summary,
        counts=summary.counts(),
        failures=summary.failures(),
        report_key="publish-report",
    )


@flow(
    name="reindex-repository",
    flow_run_name=run_name("reindex", "repository"),
    task_runner=ThreadPoolTaskRunner(max_workers=16),
)
def reindex_repository(
    repository: params.Repository,
    azure_conn_env: params.AzureConnEnv = None,
    azure_block: params.AzureBlock = None,
) -> StageSummary:
    """Rewrite the repository's root ``index.wtml`` from every published image, newest first.

    An image folder without a non-empty ``index.wtml`` (unpublished, or mid-upload) is not
    indexed.
    """
    ref = RepositoryRef.of(repository, azure_conn_env, azure_block)
    repo = ref.open()
    config = read_pipeline_config(repo)
    folders = repo.list_folders()
    ids: list[str] = []
    reports: list[ErrorReport] = []
    for name in folders:
        try:
            ids.append(validate_id(name))
        except InvalidKeyError as exc:
            reports.append(ErrorReport.from_exception(exc, "reindex", [name]))
    futures = read_place_task.map(ids, unmapped(ref))
    entries, errors = collect(futures, ids, "reindex")
    errors = ErrorStack(reports=tuple(reports)) + errors
    places = [e for e in entries.values() if e is not None]
    write_root_index_task(ref, places, config.folder_name, config.folder_thumbnail_url)
    summary = StageSummary(
        stage="reindex",
        done=tuple(e.image_id for e in places),
        skipped=tuple(i for i, e in entries.items() if e is None),
        failed=tuple(errors.failed_inputs()),
        errors=errors,
    )
    return end_stage(summary, "Reindex")


@flow(name="ingest-images", flow_run_name=run_name("ingest", "repository"))
@one_run_at_a_time("work_dir", "work folder")
def ingest_images(
    repository: params.Repository,
    work_dir: params.WorkDir,
    azure_conn_env: params.AzureConnEnv = None,
    azure_block: params.AzureBlock = None,
    force: params.Force = False,
    limit: params.Limit = None,
    png_level: params.PngLevel = DEFAULT_PNG_LEVEL,
    tile_workers: params.TileWorkers = None,
    review: params.Review = False,
    review_timeout: params.ReviewTimeout = 3600,
    task_runner: params.TaskRunner = "threads",
) -> list[StageSummary]:
    """fetch -> process -> publish -> reindex, each stage a subflow; this run's report
    repeats every stage's counts, failures and the images published. ``task_runner`` is
    where the images are tiled (see ``process-images``)."""
    stages = [
        fetch_images(repository, work_dir, azure_conn_env, azure_block, force=force, limit=limit),
        process_images(
            repository,
            work_dir,
            azure_conn_env,
            azure_block,
            png_level=png_level,
            tile_workers=tile_workers,
            task_runner=task_runner,
        ),
    ]
    if review:
        wait_for_review(work_dir, review_timeout)
    stages += [
        publish_images(repository, work_dir, azure_conn_env, azure_block),
        reindex_repository(repository, azure_conn_env, azure_block),
    ]
    headline = ingest_headline(stages)
    sections = [
        *stage_sections(stages),
        published_section(
            RepositoryRef.of(repository, azure_conn_env, azure_block), stages[2].done
        ),
    ]
    report.publish("ingest-report", "Ingest", headline, sections, stage_failures(stages))
    return report.finish(
        headline,
        stages,
        counts=stage_counts(stages),
        failures=stage_failures(stages),
        report_key="ingest-report",
    )


def wait_for_review(work_dir: str, timeout_s: int) -> None:
    """Publish the review artifact and pause until the operator answers the resume form.

    Raises
    ------
    ReviewTimeoutError
        When nobody answered within ``timeout_s`` seconds (nothing is published).
    """
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    logger = get_run_logger()
    offered = open_review_task(work_dir)
    if not offered:
        logger.info("review: no processed image waits for a decision")
        return
    reviewing.publish_review_artifact(WorkDir(work_dir), offered)
    try:
        answer = pause_flow_run(
            wait_for_input=reviewing.ReviewInput.with_initial_data(
                description=f"Approve or reject: {', '.join(offered)}"
            ),
            timeout=timeout_s,
            poll_interval=2,
        )
    except FlowPauseTimeout:
        # the run ends Failed, having published nothing: never "everything"
        raise ReviewTimeoutError(
            f"review of {len(offered)} image(s) not answered within {timeout_s} s: nothing "
            f"published; decide with `astroflow approve|reject` and publish, or run again"
        ) from None
    decided = record_decisions_task(work_dir, reviewing.decisions_from(answer, offered))
    logger.info(
        "review: %d approved, %d rejected, %d undecided",
        sum(d.decision == "approved" for d in decided),
        sum(d.decision == "rejected" for d in decided),
        len(offered) - len(decided),
    )


def stage_report(summary: StageSummary, title: str, extra_sections: Sequence[str] = ()) -> None:
    """A stage's counts in the log, its errors and its report as artifacts
    (``<stage>-errors``, ``<stage>-report``)."""
    get_run_logger().info("%s", summary.line())
    publish_errors(summary.errors, f"{summary.stage}-errors", f"{title} errors")
    sections = [*stage_sections([summary]), *extra_sections]
    report.publish(f"{summary.stage}-report", title, summary.line(), sections, summary.failures())


def end_stage(summary: StageSummary, title: str) -> StageSummary:
    """How every stage ends: :func:`stage_report`, then the run's headline and signals."""
    stage_report(summary, title)
    return report.finish(
        summary.line(),
        summary,
        counts=summary.counts(),
        failures=summary.failures(),
        report_key=f"{summary.stage}-report",
    )


def stage_counts(stages: Sequence[StageSummary]) -> dict[str, int]:
    """``<stage>_<count>`` of every stage (``publish_done``, ``process_failed``...)."""
    return {f"{s.stage}_{k}": v for s in stages for k, v in s.counts().items()}


def stage_failures(stages: Sequence[StageSummary]) -> dict[str, str]:
    """Every stage's failed inputs with their reasons, keyed ``<stage>: <input>``."""
    return {f"{s.stage}: {name}": why for s in stages for name, why in s.failures().items()}


def reject_images(repo: RepositoryRef, work_dir: str, decisions: dict[str, Any]) -> list[str]:
    """Rejected images: ``skip.flag`` (holding the reason) in the repository, so they are
    never fetched again; their processed folders move to ``out_rejected``."""
    rejected = [d for d in decisions.values() if d.decision == "rejected"]
    return [reject_image_task(repo, work_dir, d.image_id, d.reason) for d in rejected]


def ignored_tags(manifests: dict[str, Any]) -> list[ErrorReport]:
    """A noncritical report for every AVM tag left out of a processed image (it was placed
    all the same)."""
    return [
        ErrorReport.from_exception(
            NoncriticalProcessingError(f"AVM tag left out, the image was placed: {tag}"),
            "process",
            [image_id],
        )
        for image_id, manifest in sorted(manifests.items())
        for tag in manifest.ignored_avm
    ]


def ingest_headline(stages: list[StageSummary]) -> str:
    """``3 images published, 1 failed (process), 2 rejected`` from the four stages."""
    by = {s.stage: s for s in stages}
    failed = [f"{len(s.failed)} failed ({s.stage})" for s in stages if s.failed]
    parts = [f"{len(by['publish'].done) if 'publish' in by else 0} image(s) published", *failed]
    if "fetch" in by and by["fetch"].rejected:
        parts.append(f"{len(by['fetch'].rejected)} rejected by the source")
    return ", ".join(parts)


def stage_sections(stages: list[StageSummary]) -> list[str]:
    """Counts of every stage, then every failed input of every stage with its reason."""
    counts = report.table(
        ["stage", "new", "skipped", "done", "failed", "rejected"],
        [
            (s.stage, len(s.new), len(s.skipped), len(s.done), len(s.failed), len(s.rejected))
            for s in stages
        ],
    )
    errors = ErrorStack.merge(s.errors for s in stages)
    sections = ["### Counts\n\n" + counts, report.errors_section(errors)]
    reasons = {i: why for s in stages for i, why in s.reject_reasons.items()}
    if reasons:
        rows = sorted(reasons.items())
        sections.append(
            "### Rejected by the source\n\n"
            "Not ingestible as offered; `astroflow ignore-rejects` writes their `skip.flag`.\n\n"
            + report.table(["image", "why"], rows)
        )
    return sections


def published_section(repo: RepositoryRef, ids: Sequence[str]) -> str:
    """The images published by this run, with their WTML URLs, and thumbnails when the
    repository is served over http from a host other than this machine (a ``localhost``
    prefix, the default, would show broken images in a UI opened elsewhere)."""
    from urllib.parse import urlsplit

    try:
        prefix = read_pipeline_config(repo.open()).publish_url_prefix
    except AstroflowError:
        prefix = ""
    parts = urlsplit(prefix)
    thumbnails = parts.scheme in ("http", "https") and parts.hostname not in (
        "localhost",
        "127.0.0.1",
        "::1",
    )
    rows = []
    for image_id in sorted(ids):
        layout = ImageLayout(image_id)
        row = [image_id, layout.url(prefix)]
        if thumbnails:
            row.append(f"![{image_id}]({layout.url(prefix, layout.THUMBNAIL)})")
        rows.append(row)
    headers = ["image", "WTML", "thumbnail"] if thumbnails else ["image", "WTML"]
    return "### Published images\n\n" + report.table(headers, rows)


def ignore_rejects(repository: str | RepositoryRef, work_dir: str) -> tuple[list[str], ErrorStack]:
    """Write ``<id>/skip.flag`` (holding the reason) for every recorded reject."""
    repo = RepositoryRef.of(repository)
    written: list[str] = []
    reports: list[ErrorReport] = []
    items = [(rid, f"{r.source_id}: {r.reason}") for rid, r in WorkDir(work_dir).rejects().items()]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(rid, pool.submit(write_skip_flag, repo, rid, text)) for rid, text in items]
        for rid, fut in futures:
            try:
                written.append(fut.result())
            except Exception as exc:
                reports.append(ErrorReport.from_exception(exc, "ignore-rejects", [rid]))
    return written, ErrorStack(reports=tuple(reports))
