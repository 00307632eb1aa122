"""Prefect tasks of the data organiser; their bodies are in :mod:`.organiser_work`."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from astroflow.models.cascade import WorkspaceRef
from astroflow.models.errors import ErrorReport
from astroflow.models.organiser import SofPlan
from astroflow.models.rules import RuleBook, RuleSet
from astroflow.tasks import organiser_work as work
from astroflow.tasks.logs import send_astroflow_logs_to_runs

send_astroflow_logs_to_runs()


@task(name="uncompress-frames", cache_policy=NO_CACHE)
def uncompress_task(workspace: WorkspaceRef) -> tuple[list[str], list[tuple[str, str]]]:
    """Uncompress ``.Z`` and ``.gz`` FITS in the workspace root."""
    return work.uncompress(workspace)


@task(name="organise-new-frames", cache_policy=NO_CACHE)
def organise_new_frames_task(
    workspace: WorkspaceRef, rules: RuleSet | RuleBook
) -> tuple[int, int, list[ErrorReport]]:
    """New frames of the workspace root to ``raw/<night>/`` or ``misc/`` (recorded)."""
    return work.organise_new_frames(workspace, rules)


@task(name="sanity-check", cache_policy=NO_CACHE)
def sanity_check_task(
    workspace: WorkspaceRef, rules: RuleSet | RuleBook
) -> tuple[int, int, int, list[ErrorReport]]:
    """Make the frame table and ``raw/`` agree."""
    return work.sanity_check(workspace, rules)


@task(name="predict-products", cache_policy=NO_CACHE)
def predict_task(workspace: WorkspaceRef, rules: RuleSet | RuleBook) -> tuple[int, int, int, bool]:
    """Group frames into sets and predict every product."""
    return work.predict(workspace, rules)


@task(name="write-sofs", cache_policy=NO_CACHE)
def write_sofs_task(
    workspace: WorkspaceRef, rules: RuleSet | RuleBook, session: str
) -> tuple[int, bool]:
    """Match calibrations for one session and write its SOF files."""
    return work.write_session_sofs(workspace, rules, session)


@task(name="begin-prepare", cache_policy=NO_CACHE)
def begin_prepare_task(workspace: WorkspaceRef, default_rules: str, refresh: bool) -> str:
    """The session prepared for; with ``refresh``, the inventory forgotten."""
    return work.begin_prepare(workspace, default_rules, refresh)


@task(name="refresh-sofs", task_run_name="refresh-sofs-{session}", cache_policy=NO_CACHE)
def refresh_sofs_task(
    workspace: WorkspaceRef, rules: RuleSet | RuleBook, session: str
) -> list[SofPlan]:
    """The session's SOFs matched from its statuses now, stored and written."""
    return work.refresh_session_sofs(workspace, rules, session)


@task(name="open-session", task_run_name="open-session-{session}", cache_policy=NO_CACHE)
def open_session_task(workspace: WorkspaceRef, session: str) -> int:
    """The session's folders made; pixel caches of killed runs removed (how many)."""
    return work.open_session(workspace, session)
