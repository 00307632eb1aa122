"""The ``prepare-workspace`` flow and session management of the data organiser."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.common import publish_errors
from models.errors import ConfigError, ErrorStack
from models.organiser import PrepareSummary
from models.rules import DEFAULT_RULESET, load_rules
from storage import catalog
from storage.database import Database
from storage.keys import validate_session_id
from storage.workspace import ensure_session_dirs
from tasks.organiser import (
    forget_fingerprints,
    organise_new_frames_task,
    predict_task,
    sanity_check_task,
    uncompress_task,
    write_sofs_task,
)

DEFAULT_SESSION = "base"


def open_workspace(workspace: str) -> tuple[Path, Database]:
    ws = Path(workspace).expanduser().resolve()
    if not ws.is_dir():
        raise ConfigError(f"workspace {workspace!r} is not a folder")
    return ws, Database(ws)


def ensure_current_session(db: Database, ws: Path, rules: str = DEFAULT_RULESET) -> str:
    current = catalog.current_session(db)
    if current is None:
        existing = catalog.sessions(db)
        if existing:
            catalog.switch_session(db, existing[0].name)
            current = catalog.current_session(db)
        else:
            current = catalog.create_session(db, DEFAULT_SESSION, rules=rules)
    assert current is not None
    ensure_session_dirs(ws, current.name)
    return current.name


@flow(name="prepare-workspace")
def prepare_workspace(
    workspace: str, refresh: bool = False, rules: str | None = None
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
    ws, db = open_workspace(workspace)
    session = ensure_current_session(db, ws, rules or DEFAULT_RULESET)
    session_row = next(s for s in catalog.sessions(db) if s.name == session)
    ruleset = load_rules(rules or session_row.rules)
    if refresh:
        catalog.clear_inventory(db)
        forget_fingerprints(str(ws))
    _, failed = uncompress_task(str(ws))
    new, read_new, reports = organise_new_frames_task(str(ws), db.url, ruleset)
    added, removed, read_old, more = sanity_check_task(str(ws), db.url, ruleset)
    n_sets, incomplete, n_products, changed = predict_task(str(ws), db.url, ruleset)
    written = 0
    for s in catalog.sessions(db):
        ensure_session_dirs(ws, s.name)
        w, c = write_sofs_task(str(ws), db.url, load_rules(s.rules) if s.rules else ruleset, s.name)
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
        ws,
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
    return summary


def create_session(workspace: str, name: str, rules: str | None = None) -> str:
    """Create a session (and make it current); it starts with no statuses of its own."""
    ws, db = open_workspace(workspace)
    validate_session_id(name)
    current = catalog.current_session(db)
    catalog.create_session(db, name, rules=rules or (current.rules if current else DEFAULT_RULESET))
    ensure_session_dirs(ws, name)
    return name


def switch_session(workspace: str, name: str) -> None:
    _, db = open_workspace(workspace)
    catalog.switch_session(db, validate_session_id(name))
