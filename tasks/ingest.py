"""Prefect tasks of the ingest pipeline: thin wrappers of :mod:`tasks.ingest_work`.

Each task works on one image and returns a small value (an outcome string, a manifest, a
Place), never pixels.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from astroflow.models.errors import RepositoryUnreachableError
from astroflow.models.ingest import Candidate, ImageManifest, Reject, ReviewDecision
from astroflow.models.repository import PutTreeResult
from astroflow.storage.ingest.images import DEFAULT_PNG_LEVEL
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.ingest.wtml import PlaceEntry
from astroflow.tasks.ingest_work import (
    ensure_source,
    fetch_image,
    open_review,
    open_stage,
    process_image,
    publish_image,
    read_published_place,
    record_decisions,
    record_rejects,
    reject_in_review,
    write_root_index,
)
from astroflow.tasks.logs import send_astroflow_logs_to_runs

send_astroflow_logs_to_runs()


@task(name="fetch-image", task_run_name="fetch-{candidate.id}")
def fetch_image_task(
    candidate: Candidate, repository: RepositoryRef, work_dir: str, force: bool = False
) -> str | Reject:
    return fetch_image(candidate, repository, work_dir, force=force)


@task(name="process-image", task_run_name="process-{image_id}")
def process_image_task(
    image_id: str,
    work_dir: str,
    publish_url_prefix: str,
    png_level: int = DEFAULT_PNG_LEVEL,
    workers: int | None = None,
    fits_tiles: str = "fits",
) -> ImageManifest:
    return process_image(
        image_id,
        work_dir,
        publish_url_prefix,
        png_level=png_level,
        workers=workers,
        fits_tiles=fits_tiles,
    )


def _worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a publish unless the repository is unreachable (its breaker is open: waiting
    would only repeat the answer)."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, RepositoryUnreachableError)


@task(
    name="publish-image",
    task_run_name="publish-{image_id}",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_worth_retrying,
)
def publish_image_task(image_id: str, repository: RepositoryRef, work_dir: str) -> PutTreeResult:
    return publish_image(image_id, repository, work_dir)


# -- reindex --------------------------------------------------------------------------------


@task(name="read-place", task_run_name="read-place-{image_id}", retries=1)
def read_place_task(image_id: str, repository: RepositoryRef) -> PlaceEntry | None:
    """The Place of ``<id>/index.wtml``, or None when the image has no marker (unpublished)."""
    return read_published_place(image_id, repository)


@task(name="write-root-index")
def write_root_index_task(
    repository: RepositoryRef, places: list[PlaceEntry], folder_name: str, thumbnail_url: str
) -> None:
    """The repository's root ``index.wtml``, newest first."""
    return write_root_index(repository, places, folder_name, thumbnail_url)


# -- the work folder around the stages ----------------------------------------------------------


@task(name="open-stage", task_run_name="open-{clean}")
def open_stage_task(work_dir: str, clean: str, listed: str | None = None) -> list[str]:
    """Clean the ``.partial`` folders of a stage and list the ids waiting in another."""
    return open_stage(work_dir, clean, listed)


@task(name="record-rejects")
def record_rejects_task(work_dir: str, found: list[Reject]) -> None:
    return record_rejects(work_dir, found)


@task(name="reject-image", task_run_name="reject-{image_id}", retries=1)
def reject_image_task(repository: RepositoryRef, work_dir: str, image_id: str, reason: str) -> str:
    """``skip.flag`` for an image rejected in review; its folder to ``out_rejected``."""
    return reject_in_review(repository, work_dir, image_id, reason)


@task(name="open-review")
def open_review_task(work_dir: str) -> list[str]:
    """Review on for the work folder; the images waiting for a decision."""
    return open_review(work_dir)


@task(name="record-decisions")
def record_decisions_task(work_dir: str, decisions: list[ReviewDecision]) -> list[ReviewDecision]:
    return record_decisions(work_dir, decisions)


@task(name="ensure-source-config")
def ensure_source_task(
    repository: RepositoryRef,
    source_type: str,
    section: dict[str, Any],
    publish_url_prefix: str,
    folder_name: str,
) -> bool:
    """The repository's pipeline config for this source, written when it has none."""
    return ensure_source(repository, source_type, section, publish_url_prefix, folder_name)
