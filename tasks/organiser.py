"""Prefect tasks of the data organiser; their bodies are in :mod:`.organiser_work`."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from astroflow.models.errors import ErrorReport
from astroflow.models.rules import RuleSet
from astroflow.tasks import organiser_work as work


@task(name="uncompress-frames", cache_policy=NO_CACHE)
def uncompress_task(workspace: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Uncompress ``.Z`` and ``.gz`` FITS in the workspace root."""
    return work.uncompress(workspace)


@task(name="organise-new-frames", cache_policy=NO_CACHE)
def organise_new_frames_task(
    workspace: str, db_url: str, rules: RuleSet
) -> tuple[int, int, list[ErrorReport]]:
    """New frames of the workspace root to ``raw/<night>/`` or ``misc/`` (recorded)."""
    return work.organise_new_frames(workspace, db_url, rules)


@task(name="sanity-check", cache_policy=NO_CACHE)
def sanity_check_task(
    workspace: str, db_url: str, rules: RuleSet
) -> tuple[int, int, int, list[ErrorReport]]:
    """Make the frame table and ``raw/`` agree."""
    return work.sanity_check(workspace, db_url, rules)


@task(name="predict-products", cache_policy=NO_CACHE)
def predict_task(workspace: str, db_url: str, rules: RuleSet) -> tuple[int, int, int, bool]:
    """Group frames into sets and predict every product."""
    return work.predict(workspace, db_url, rules)


@task(name="write-sofs", cache_policy=NO_CACHE)
def write_sofs_task(workspace: str, db_url: str, rules: RuleSet, session: str) -> tuple[int, bool]:
    """Match calibrations for one session and write its SOF files."""
    return work.write_session_sofs(workspace, db_url, rules, session)
