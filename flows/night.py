"""One night end to end: ``process-night`` and the ``astroflow demo``.

prepare-workspace -> calibration-cascade -> ingest-images (fetch the reduced science frames
that passed QC from the workspace, process, publish, reindex), each an existing flow run as a
subflow so that the Prefect UI shows one tree.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict

from astroflow.flows import params, report
from astroflow.flows.cascade import calibration_cascade, cascade_sections
from astroflow.flows.ingest import (
    ingest_headline,
    ingest_images,
    published_section,
    stage_sections,
)
from astroflow.flows.organiser import prepare_sections, prepare_workspace
from astroflow.models.cascade import CascadeSummary
from astroflow.models.errors import ConfigError
from astroflow.models.ingest import CONFIG_FILE, StageSummary
from astroflow.models.organiser import PrepareSummary
from astroflow.storage.repository import open_repository
from astroflow.storage.sources import read_pipeline_config
from astroflow.storage.workspace import Workspace


class NightSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    prepare: PrepareSummary
    cascade: CascadeSummary
    ingest: tuple[StageSummary, ...]


def ensure_workspace_source(
    repository: str,
    workspace: str,
    azure_conn_env: str | None,
    publish_url_prefix: str,
    folder_name: str,
) -> None:
    """Write the repository's pipeline config for a workspace source if it has none; refuse a
    config of another source type (it belongs to another pipeline)."""
    repo = open_repository(repository, azure_conn_env=azure_conn_env)
    if repo.exists(CONFIG_FILE):
        config = read_pipeline_config(repo)
        if config.source_type != "workspace":
            raise ConfigError(
                f"{repo.url}/{CONFIG_FILE} has source_type {config.source_type!r}; the night "
                "flow needs a repository whose source is 'workspace'"
            )
        return
    repo.ensure()
    repo.write_text(
        CONFIG_FILE,
        yaml.safe_dump(
            {
                "source_type": "workspace",
                "publish_url_prefix": publish_url_prefix,
                "folder_name": folder_name,
                "folder_thumbnail_url": "",
                "workspace": {"path": str(Path(workspace).expanduser().resolve())},
            },
            sort_keys=False,
        ),
    )


@flow(name="process-night")
def process_night(
    workspace: params.Workspace,
    repository: params.Repository,
    azure_conn_env: params.AzureConnEnv = None,
    work_dir: params.NightWorkDir = None,
    publish_url_prefix: params.PublishUrlPrefix = "http://localhost:8000/",
    folder_name: params.FolderName = "astroflow night",
    overwrite: params.Overwrite = False,
    task_runner: params.TaskRunner = "threads",
) -> NightSummary:
    """Calibrate a night's raw frames and publish the reduced science frames to WWT.

    Parameters
    ----------
    workspace
        Workspace of raw frames (new frames in its root).
    repository
        WWT data repository (URL or path); gets a ``workspace`` source config if it has none.
    work_dir
        Ingest work directory (default: ``<workspace>/ingest``).
    publish_url_prefix
        URL the repository is served under (for the WTML of a new repository).
    """
    logger = get_run_logger()
    ensure_workspace_source(repository, workspace, azure_conn_env, publish_url_prefix, folder_name)
    prepared = prepare_workspace(workspace)
    cascade = calibration_cascade(workspace, overwrite=overwrite, task_runner=task_runner)
    work = work_dir or str(Path(workspace).expanduser().resolve() / "ingest")
    ingest = ingest_images(repository, work, azure_conn_env, task_runner=task_runner)
    logger.info("night done: %s; %s", cascade.line(), "; ".join(s.line() for s in ingest))
    headline = f"{cascade.headline()}; {ingest_headline(ingest)}"
    ws = Workspace.open(workspace)
    report.publish(
        "night-report",
        f"Night {ws.root}",
        headline,
        [
            "## Prepare\n\n" + prepared.headline() + "\n",
            *prepare_sections(prepared),
            "## Calibration\n\n" + cascade.headline() + "\n",
            *cascade_sections(ws, cascade, None),
            "## Ingest\n\n" + ingest_headline(ingest) + "\n",
            *stage_sections(ingest),
            published_section(repository, azure_conn_env, ingest[2].done),
        ],
    )
    summary = NightSummary(prepare=prepared, cascade=cascade, ingest=tuple(ingest))
    return report.finish(headline, summary)
