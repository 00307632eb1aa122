"""One night end to end: ``process-night`` and the ``astroflow demo``.

prepare-workspace -> calibration-cascade -> ingest-images (fetch the reduced science frames
that passed QC from the workspace, process, publish, reindex), each an existing flow run as a
subflow so that the Prefect UI shows one tree.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict

from astroflow.flows import params, report
from astroflow.flows.cascade import calibration_cascade, cascade_sections
from astroflow.flows.ingest import (
    ingest_headline,
    ingest_images,
    published_section,
    stage_counts,
    stage_failures,
    stage_sections,
)
from astroflow.flows.locks import one_run_at_a_time
from astroflow.flows.names import rename_run, run_name
from astroflow.flows.organiser import prepare_sections, prepare_workspace
from astroflow.models.cascade import CascadeSummary
from astroflow.models.ingest import StageSummary
from astroflow.models.organiser import PrepareSummary
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.ingest import ensure_source_task
from astroflow.tasks.organiser_work import night_label


class NightSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    prepare: PrepareSummary
    cascade: CascadeSummary
    ingest: tuple[StageSummary, ...]


@flow(name="process-night", flow_run_name=run_name("night", "workspace"))
@one_run_at_a_time("workspace", "workspace")
def process_night(
    workspace: params.Workspace,
    repository: params.Repository,
    azure_conn_env: params.AzureConnEnv = None,
    azure_block: params.AzureBlock = None,
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
    repo = RepositoryRef.of(repository, azure_conn_env, azure_block)
    prepared = prepare_workspace(workspace)
    label = night_label(Workspace.open(workspace).ref)
    if label:
        rename_run(f"night-{label}")  # the runs list says which night and camera
    cascade = calibration_cascade(workspace, overwrite=overwrite, task_runner=task_runner)
    # the repository only now: a night is calibrated even while the repository is down (a
    # retry of the run then publishes, with the calibration already done)
    ensure_source_task(
        repo,
        "workspace",
        {"path": str(Path(workspace).expanduser().resolve())},
        publish_url_prefix,
        folder_name,
    )
    work = work_dir or str(Path(workspace).expanduser().resolve() / "ingest")
    ingest = ingest_images(repository, work, azure_conn_env, azure_block, task_runner=task_runner)
    logger.info("night done: %s; %s", cascade.line(), "; ".join(s.line() for s in ingest))
    headline = f"{cascade.headline()}; {ingest_headline(ingest)}"
    ws = Workspace.open(workspace)
    report.publish(
        "night-report",
        f"Night {label}" if label else f"Night {ws.root}",  # the night and its cameras
        headline,
        [
            "## Prepare\n\n" + prepared.headline() + "\n",
            *prepare_sections(prepared),
            "## Calibration\n\n" + cascade.headline() + "\n",
            *cascade_sections(ws, cascade, None),
            "## Ingest\n\n" + ingest_headline(ingest) + "\n",
            *stage_sections(ingest),
            published_section(repo, ingest[2].done),
        ],
        failures={**cascade.failures(), **stage_failures(ingest)},
    )
    summary = NightSummary(prepare=prepared, cascade=cascade, ingest=tuple(ingest))
    return report.finish(
        headline,
        summary,
        counts={**cascade.counts(), **stage_counts(ingest)},
        failures={**cascade.failures(), **stage_failures(ingest)},
        report_key="night-report",
    )
