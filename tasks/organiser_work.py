"""The data organiser's task bodies as plain functions (no Prefect import): read headers,
classify, move, store. :mod:`astroflow.tasks.organiser` declares them as Prefect tasks."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from astroflow.models.cascade import WorkspaceRef
from astroflow.models.errors import ConfigError, ErrorReport, ProcessingError
from astroflow.models.organiser import FrameInfo, SofPlan
from astroflow.models.rules import RuleBook, RuleSet
from astroflow.processing.organiser import (
    classify,
    header_keywords,
    match_book,
    plan_book,
)
from astroflow.storage.database import Database
from astroflow.storage.files import write_bytes_atomic
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.headers import read_header
from astroflow.storage.organiser.inventory import (
    FileStat,
    move_to,
    raw_files,
    root_fits,
    root_others,
    stat,
    uncompress_root,
)
from astroflow.storage.organiser.workspace import Workspace

log = logging.getLogger(__name__)


def _frame_cards(path: Path, wanted: frozenset[str]) -> dict[str, Any]:
    """The header cards that classify a frame: its primary's (the fast scanner); for a frame
    whose pixels live in extensions (or a cube), its first image extension's, then the
    primary's it lacks.

    Raises
    ------
    ProcessingError
        Naming the file and what it holds, for a cube or a file with no 2-D image.
    """
    cards = read_header(path, wanted | {"NAXIS"})
    if cards.get("NAXIS") == 2:
        return cards
    from astroflow.storage.organiser.frames import image_extensions
    from astroflow.storage.organiser.frames import read_header as full_header

    extensions = image_extensions(path)
    if extensions is None:
        return cards
    merged = full_header(path, extensions[0])
    return {key: merged[key] for key in wanted if key in merged}


def _read_many(paths: list[Path], rules: RuleSet | RuleBook) -> list[FrameInfo | ProcessingError]:
    """Classify frames from the header cards the rules name (sequential: header scanning is
    CPU work under the GIL, threads only add contention; measured)."""
    from astroflow.models.settings import Settings

    wanted = header_keywords(rules)
    longitude = Settings().site_longitude
    out: list[FrameInfo | ProcessingError] = []
    for path in paths:
        try:
            out.append(classify(path.name, _frame_cards(path, wanted), rules, longitude))
        except ProcessingError as exc:
            out.append(exc)
    return out


def uncompress(workspace: WorkspaceRef) -> tuple[list[str], list[tuple[str, str]]]:
    """Uncompress ``.Z`` and ``.gz`` FITS in the workspace root."""
    return uncompress_root(Path(workspace.root))


def organise_new_frames(
    workspace: WorkspaceRef, rules: RuleSet | RuleBook
) -> tuple[int, int, list[ErrorReport]]:
    """Classify FITS files in the workspace root: raw frames to ``raw/<night>/`` (recorded),
    anything else to ``misc/`` (recorded as rejected, with the reason).

    Returns
    -------
    added, headers_read, reports
    """
    ws = Path(workspace.root)
    db = Workspace.from_ref(workspace).database()
    paths = root_fits(ws)
    infos = _read_many(paths, rules)
    known = set(catalog.frame_stats(db))
    added: list[tuple[FileStat, FrameInfo]] = []
    rejected: list[tuple[FileStat, str]] = []
    reports: list[ErrorReport] = []
    taken = set(known)
    for path in root_others(ws):  # not FITS at all: misc/, as soxspipe does
        rel = move_to(ws, path, "misc")
        rejected.append((stat(ws, rel), "not a FITS file"))
        reports.append(
            ErrorReport(
                error_type="NotFits",
                message=f"{path.name}: not a FITS file (moved to misc/)",
                step="prepare",
                inputs=(path.name,),
                expected=True,
                critical=False,
            )
        )
    for path, info in zip(paths, infos, strict=True):
        if isinstance(info, FrameInfo) and info.path in taken:
            info = ProcessingError(
                f"{path.name}: a frame of that name is already in raw/{info.night}/"
            )
        if isinstance(info, ProcessingError):
            rel = move_to(ws, path, "misc")
            rejected.append((stat(ws, rel), str(info)))
            reports.append(ErrorReport.from_exception(info, "prepare", [path.name]))
            continue
        rel = move_to(ws, path, f"raw/{info.night}")
        if rel != info.path:  # a clash renamed it
            info = info.model_copy(update={"file": rel.rsplit("/", 1)[-1]})
        taken.add(rel)
        added.append((stat(ws, rel), info))
    catalog.add_frames(db, added)
    catalog.add_rejected(db, rejected)
    return len(added), len(paths), reports


def sanity_check(
    workspace: WorkspaceRef, rules: RuleSet | RuleBook
) -> tuple[int, int, int, list[ErrorReport]]:
    """Make the table and ``raw/`` agree: drop rows whose files vanished, add (or re-read)
    files that are missing from the table or changed (by size and mtime).

    Returns
    -------
    added, removed, headers_read, reports
    """
    ws = Path(workspace.root)
    db = Workspace.from_ref(workspace).database()
    known = catalog.frame_stats(db)
    on_disk = raw_files(ws)
    vanished = [p for p in known if p not in on_disk]
    changed = [p for p, st in on_disk.items() if p in known and known[p] != (st.size, st.mtime_ns)]
    new = sorted([p for p in on_disk if p not in known] + changed)
    catalog.remove_frames(db, vanished + changed)
    infos = _read_many([ws / p for p in new], rules)
    added: list[tuple[FileStat, FrameInfo]] = []
    rejected: list[tuple[FileStat, str]] = []
    reports: list[ErrorReport] = []
    for rel, info in zip(new, infos, strict=True):
        if isinstance(info, ProcessingError):
            dest = move_to(ws, ws / rel, "misc")
            rejected.append((stat(ws, dest), str(info)))
            reports.append(ErrorReport.from_exception(info, "prepare", [rel]))
            continue
        night_dir = rel.split("/")[1]
        if night_dir != info.night:  # filed under the wrong night: move it
            rel = move_to(ws, ws / rel, f"raw/{info.night}")
            info = info.model_copy(update={"file": rel.rsplit("/", 1)[-1]})
        added.append((stat(ws, rel), info))
    catalog.add_frames(db, added)
    catalog.add_rejected(db, rejected)
    return len(added), len(vanished), len(new), reports


def predict(workspace: WorkspaceRef, rules: RuleSet | RuleBook) -> tuple[int, int, int, bool]:
    """Group frames into sets and predict every product; store them (only when changed).

    Returns
    -------
    sets, incomplete, products, changed
    """
    ws = Workspace.from_ref(workspace)
    db = ws.database()
    fingerprint = _fingerprint(
        ws.database_url, rules.model_dump_json(), sorted(catalog.frame_stats(db).items())
    )
    stamp = ws.state_dir() / "plan.fingerprint"
    if stamp.exists() and stamp.read_text() == fingerprint:
        n_sets, n_bad, n_products = catalog.plan_counts(db)
        if n_sets or not catalog.frame_stats(db):
            return n_sets, n_bad, n_products, False  # inventory unchanged: plan unchanged
    frames = [info for _, info in catalog.load_frames(db).values()]
    sets, products = plan_book(frames, rules)
    changed = catalog.replace_plan(db, sets, products)
    _write_stamp(stamp, fingerprint)
    return len(sets), sum(not s.complete for s in sets), len(products), changed


def _fingerprint(*parts: object) -> str:
    import hashlib

    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _write_stamp(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def forget_fingerprints(workspace: Workspace) -> None:
    """Make the next prepare recompute everything (``--refresh``)."""
    import shutil

    shutil.rmtree(workspace.state_dir(), ignore_errors=True)


def session_sofs(
    ws: Workspace, db: Database, rules: RuleSet | RuleBook, session: str
) -> list[SofPlan]:
    """Every set's SOF for a session, from the stored predictions and the session's statuses
    (each set matched under the ruleset that classified its frames)."""
    sets, products = catalog.load_plan(db)
    frame_rules = {path: info.rules for path, (_, info) in catalog.load_frames(db).items()}
    return match_book(
        sets,
        products,
        rules,
        frame_rules,
        catalog.statuses(db, session),
        ws.session_root(session),
    )


def write_session_sofs(
    workspace: WorkspaceRef, rules: RuleSet | RuleBook, session: str
) -> tuple[int, bool]:
    """Match calibrations for one session; store its SOF map and write its SOF files (only
    those whose bytes change). Returns (files written or removed, table changed)."""
    ws = Workspace.from_ref(workspace)
    ws.ensure_session_dirs(session)
    db = ws.database()
    plan_stamp = ws.state_dir() / "plan.fingerprint"
    fingerprint = _fingerprint(
        plan_stamp.read_text() if plan_stamp.exists() else "",
        rules.model_dump_json(),
        sorted(catalog.statuses(db, session).items()),
    )
    stamp = ws.state_dir() / f"sof-{session}.fingerprint"
    if stamp.exists() and stamp.read_text() == fingerprint and plan_stamp.exists():
        return 0, False  # same plan and statuses: same SOFs
    sofs = session_sofs(ws, db, rules, session)
    changed = catalog.replace_sofs(db, session, sofs)
    written = ws.write_sofs(session, {s.set_name: s.text() for s in sofs})
    _write_stamp(stamp, fingerprint)
    return written, changed


def begin_prepare(workspace: WorkspaceRef, default_rules: str, refresh: bool) -> str:
    """The session a prepare works for (the current one; the first, made with
    ``default_rules``, in a new workspace); with ``refresh`` the inventory and the plan's
    fingerprints are forgotten, so that every header is read again."""
    ws = Workspace.from_ref(workspace)
    session = ws.current_or_first_session(default_rules)
    if refresh:
        catalog.clear_inventory(ws.database())
        forget_fingerprints(ws)
    return session


def refresh_session_sofs(
    workspace: WorkspaceRef, rules: RuleSet | RuleBook, session: str
) -> list[SofPlan]:
    """Match calibrations for a session from its statuses now, store its SOF map and write
    its SOF files (the cascade, before each level and at the end); returns the SOFs."""
    ws = Workspace.from_ref(workspace)
    db = ws.database()
    sofs = session_sofs(ws, db, rules, session)
    catalog.replace_sofs(db, session, sofs)
    ws.write_sofs(session, {s.set_name: s.text() for s in sofs})
    return sofs


def open_session(workspace: WorkspaceRef, session: str) -> int:
    """Make the session's folders and remove the pixel caches killed runs left in it;
    returns how many were removed."""
    from astroflow.storage.organiser.frames import sweep_pixel_caches

    ws = Workspace.from_ref(workspace)
    ws.ensure_session_dirs(session)
    return sweep_pixel_caches(ws.session_dir(session))


def qc_table(workspace: WorkspaceRef, session: str) -> list[dict[str, Any]]:
    """Every QC value of a session's products judged against the ranges in force now (the
    shipped defaults, the recipes' declared ones, the session's ``qc.yaml``): one row per
    product and metric (keys ``product``, ``recipe``, ``metric``, ``value``, ``lo``, ``hi``,
    ``verdict``: ``pass``, ``fail``, or ``-`` for a metric with no range)."""
    from astroflow.models.rules import load_rulebook
    from astroflow.processing.calibration import within
    from astroflow.tasks.recipes import declared_qc

    ws = Workspace.from_ref(workspace)
    try:
        declared = declared_qc(load_rulebook(ws.session_row(session).rules))
    except ConfigError:
        declared = {}  # recipes no longer installed: the shipped ranges still judge
    ranges = ws.qc_ranges(session, declared)
    rows = []
    for q in catalog.qc_rows(ws.database(), session):
        bounds = ranges.get(q.recipe, {}).get(q.qc_name)
        verdict = "-" if bounds is None else ("pass" if within(q.value, bounds) else "fail")
        rows.append(
            {
                "product": q.product,
                "recipe": q.recipe,
                "metric": q.qc_name,
                "value": q.value,
                "lo": bounds[0] if bounds else None,
                "hi": bounds[1] if bounds else None,
                "verdict": verdict,
            }
        )
    return rows


def sof_files(path: Path) -> set[str]:
    """The frames a SOF file lists (workspace-relative paths)."""
    from astroflow.storage.organiser.workspace import read_sof

    return {entry.path for entry in read_sof(path)}


def night_label(workspace: WorkspaceRef) -> str:
    """``2026-12-02-STE3``: the latest night of the workspace's raw frames and the instruments
    observed then ("" when it holds none): what names a night's run."""
    frames = [
        info for _, info in catalog.load_frames(Workspace.from_ref(workspace).database()).values()
    ]
    if not frames:
        return ""
    night = max(f.night for f in frames)
    cameras = sorted({f.instrument for f in frames if f.night == night and f.instrument})
    label = "+".join(re.sub(r"[^A-Za-z0-9._+-]", "_", c) for c in cameras)[:40]
    return f"{night}-{label}" if label else night
