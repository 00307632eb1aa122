"""Prefect tasks of the ingest pipeline: thin wrappers of :mod:`tasks.ingest_work`.

Each task works on one image and returns a small value (an outcome string, a manifest, a
Place), never pixels.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from astroflow.models.errors import RepositoryUnreachableError
from astroflow.models.ingest import Candidate, ImageManifest, Reject
from astroflow.models.repository import PutTreeResult
from astroflow.storage.images import DEFAULT_PNG_LEVEL
from astroflow.storage.wtml import PlaceEntry
from astroflow.tasks.ingest_work import (
    fetch_image,
    process_image,
    publish_image,
    read_published_place,
)


@task(name="fetch-image", task_run_name="fetch-{candidate.id}")
def fetch_image_task(
    candidate: Candidate,
    repository: str,
    work_dir: str,
    azure_conn_env: str | None = None,
    force: bool = False,
) -> str | Reject:
    return fetch_image(candidate, repository, work_dir, azure_conn_env, force=force)


@task(name="process-image", task_run_name="process-{image_id}")
def process_image_task(
    image_id: str,
    work_dir: str,
    publish_url_prefix: str,
    png_level: int = DEFAULT_PNG_LEVEL,
    workers: int | None = None,
) -> ImageManifest:
    return process_image(
        image_id, work_dir, publish_url_prefix, png_level=png_level, workers=workers
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
def publish_image_task(
    image_id: str, repository: str, work_dir: str, azure_conn_env: str | None = None
) -> PutTreeResult:
    return publish_image(image_id, repository, work_dir, azure_conn_env)


# -- reindex --------------------------------------------------------------------------------


@task(name="read-place", task_run_name="read-place-{image_id}", retries=1)
def read_place_task(
    image_id: str, repository: str, azure_conn_env: str | None = None
) -> PlaceEntry | None:
    """The Place of ``<id>/index.wtml``, or None when the image has no marker (unpublished)."""
    return read_published_place(image_id, repository, azure_conn_env)
