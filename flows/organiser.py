"""The ``prepare-workspace`` flow and session management of the data organiser."""

from __future__ import annotations

from prefect import flow, get_run_logger

from astroflow.flows import params, report
from astroflow.flows.common import publish_errors
from astroflow.flows.locks import one_run_at_a_time
from astroflow.flows.names import run_name
from astroflow.models.errors import ErrorStack
from astroflow.models.organiser import PrepareSummary
from astroflow.models.rules import DEFAULT_RULESET, load_rulebook
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.organiser import (
    begin_prepare_task,
    organise_new_frames_task,
    predict_task,
    sanity_check_task,
    uncompress_task,
    write_sofs_task,
)
from astroflow.tasks.recipes import check_recipes


@flow(name="prepare-workspace", flow_run_name=run_name("prepare", "workspace"))
@one_run_at_a_time("workspace", "workspace")
def prepare_workspace(
    workspace: params.Workspace, refresh: params.Refresh = False, rules: params.Rules = None
) -> PrepareSummary:
    """Organise a workspace of raw FITS frames and predict the whole cascade.

    Parameters
    ----------
    workspace
        Folder holding new raw frames in its root (``.fits``, ``.fits.Z``, ``.fits.gz``).
    refresh
        Forget the inventory and rebuild it from the files (re-reading every header).
    rules
        Ruleset name (``generic-ccd``, ``eso-imager``) or YAML path; default: the current
        session's.
    """
    logger = get_run_logger()
    ws = Workspace.open(workspace, writable=True)
    db = ws.database()
    session = begin_prepare_task(ws.ref, rules or DEFAULT_RULESET, refresh)
    ruleset = load_rulebook(rules or ws.session_row(session).rules)
    check_recipes(ruleset)  # a rules file whose recipes cannot run is refused before anything
    ref = ws.ref
    _, failed = uncompress_task(ref)
    new, read_new, reports = organise_new_frames_task(ref, ruleset)
    added, removed, read_old, more = sanity_check_task(ref, ruleset)
    n_sets, incomplete, n_products, changed = predict_task(ref, ruleset)
    written = 0
    for s in ws.sessions():
        w, c = write_sofs_task(ref, load_rulebook(s.rules) if s.rules else ruleset, s.name)
        written += w
        changed = changed or c
    errors = ErrorStack(reports=tuple(reports + more))
    summary = PrepareSummary(
        session=session,
        raw_frames=len(catalog.frame_stats(db)),
        new_frames=new + added,
        removed_frames=removed,
        rejected=tuple(failed) + tuple((r.inputs[0], r.message) for r in errors.reports),
        headers_read=read_new + read_old,
        sets=n_sets,
        incomplete_sets=incomplete,
        products=n_products,
        sofs_written=written,
        database_changed=changed or bool(new or added or removed),
    )
    logger.info(
        "prepared %s: %d raw frames (%d new, %d removed, %d rejected), %d headers read, "
        "%d sets (%d incomplete), %d SOF files written",
        ws.root,
        summary.raw_frames,
        summary.new_frames,
        removed,
        len(summary.rejected),
        summary.headers_read,
        n_sets,
        incomplete,
        written,
    )
    publish_errors(errors, "prepare-errors", "Prepare errors")
    report.publish(
        "prepare-report", f"Prepare {ws.root}", summary.headline(), prepare_sections(summary)
    )
    counts = {"raw_frames": summary.raw_frames, "new_frames": summary.new_frames}
    counts |= {"rejected": len(summary.rejected), "products": summary.products}
    return report.finish(summary.headline(), summary, counts=counts, report_key="prepare-report")


def prepare_sections(summary: PrepareSummary) -> list[str]:
    """Counts and every rejected frame with the reason (it was moved to ``misc/``)."""
    counts = report.table(
        ["session", "raw frames", "new", "removed", "rejected", "sets", "incomplete", "products"],
        [
            (
                summary.session,
                summary.raw_frames,
                summary.new_frames,
                summary.removed_frames,
                len(summary.rejected),
                summary.sets,
                summary.incomplete_sets,
                summary.products,
            )
        ],
    )
    rejected = report.table(["file", "reason (moved to misc/)"], summary.rejected)
    return ["### Counts\n\n" + counts, "### Rejected frames\n\n" + rejected]


@flow(name="refresh-session", flow_run_name=run_name("refresh", "workspace", "session"))
@one_run_at_a_time("workspace", "workspace")
def refresh_session(workspace: params.Workspace, session: params.Session = None) -> tuple[str, int]:
    """Redo a session's calibration matching and SOF files from its statuses.

    Parameters
    ----------
    workspace
        A prepared workspace.
    session
        Session id (default: the current session).

    Returns
    -------
    session, written
        The session's id and the number of SOF files written or removed.
    """
    ws = Workspace.open(workspace, writable=True)
    row = ws.session_row(session)
    written, _ = write_sofs_task(ws.ref, load_rulebook(row.rules), row.name)
    return row.name, written
