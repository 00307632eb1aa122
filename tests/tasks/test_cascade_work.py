"""The cascade without Prefect: the service plans each level, the recipe bodies run by
plain calls, and the outcomes are typed values (a failed flat, its substitute, a recipe that
raised), as the flow would record them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroflow.models.cascade import RecipeResult
from astroflow.models.errors import ErrorReport, ErrorStack
from astroflow.models.rules import DEFAULT_RULESET, load_rules
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.cascade_service import CascadePlan
from astroflow.tasks.cascade_work import run_recipe
from astroflow.tasks.organiser_work import (
    begin_prepare,
    organise_new_frames,
    predict,
    refresh_session_sofs,
    uncompress,
    write_session_sofs,
)
from tests.organiser_data import make_workspace

SHAPE = (48, 40)


def _prepared(root: Path, spoil_flats: bool = False) -> Workspace:
    make_workspace(root, np.random.default_rng(11), shape=SHAPE)
    if spoil_flats:
        for path in root.glob("n1_flatR_*.fits"):  # a dead region in night 1's R flats
            with fits.open(path, mode="update") as hdul:
                hdul[0].data[:20, :20] *= 0.05
    ws = Workspace.open(root, writable=True)
    rules = load_rules(DEFAULT_RULESET)
    session = begin_prepare(ws.ref, DEFAULT_RULESET, refresh=False)
    uncompress(ws.ref)
    organise_new_frames(ws.ref, rules)
    predict(ws.ref, rules)
    write_session_sofs(ws.ref, rules, session)
    return ws


def _run(plan: CascadePlan, broken: str = "") -> None:
    """The flow's loop, with the recipe bodies called directly; a product named ``broken``
    raises in its recipe (its input is taken away)."""
    for rules, recipe in plan.levels:
        sofs = refresh_session_sofs(plan.ws.ref, plan.rules, plan.session)
        inputs = plan.level(rules, recipe, sofs)
        results: dict[str, RecipeResult] = {}
        raised: list[ErrorReport] = []
        for inp in inputs:
            if inp.product == broken:
                inp = inp.model_copy(update={"raw": ("/nowhere/frame.fits",), "min_frames": 1})
            try:
                results[inp.product] = run_recipe(inp)
            except Exception as exc:
                raised.append(ErrorReport.from_exception(exc, recipe.name, [inp.product]))
        plan.record(inputs, results, ErrorStack(reports=tuple(raised)))


def test_a_failed_flat_is_replaced_and_every_outcome_is_typed(tmp_path: Path) -> None:
    ws = _prepared(tmp_path / "ws", spoil_flats=True)
    plan = CascadePlan(ws, "base", overwrite=False, recipes=None)
    _run(plan)
    kinds = {o.product: o.kind for o in plan.outcomes}
    (bad,) = [p for p, k in kinds.items() if k == "failed_qc"]
    assert bad.startswith("20260109_MFLAT_1x1_R")
    failed = next(o for o in plan.outcomes if o.product == bad)
    assert failed.qc["cold_fraction"] > 0.05  # the metrics travel with the verdict
    assert failed.reason.startswith("QC failed: ")
    assert "cold_fraction=" in failed.reason
    reduced = next(o for o in plan.outcomes if o.product == "n1_sciR_0_RED")
    assert reduced.kind == "made"
    assert any(f"replaces {bad} (failed)" in s for s in reduced.substituted)
    summary = plan.summary()
    assert summary.failure_kinds == {bad: "qc"}
    assert summary.replaced["n1_sciR_0_RED"] == reduced.substituted
    reports = plan.reports()
    assert [r.error_type for r in reports.critical] == ["QCFailure"]

    again = CascadePlan(ws, "base", overwrite=False, recipes=None)
    _run(again)
    kinds = {o.product: o.kind for o in again.outcomes}
    assert kinds[bad] == "failed_qc"  # judged again from its stored values, not redone
    assert {k for p, k in kinds.items() if p != bad} == {"skipped", "incomplete"}


def test_a_recipe_that_raises_is_a_typed_failure(tmp_path: Path) -> None:
    ws = _prepared(tmp_path / "ws")
    plan = CascadePlan(ws, "base", overwrite=False, recipes=["mbias"])
    _run(plan, broken="20260109_MBIAS_1x1_4178e0")
    (failed,) = [o for o in plan.outcomes if o.failed]
    assert failed.kind == "failed_recipe"
    assert failed.product == "20260109_MBIAS_1x1_4178e0"
    assert failed.error_type in ("CalibrationError", "ProcessingError")
    assert plan.summary().failure_kinds == {failed.product: "recipe"}
    assert {o.recipe for o in plan.outcomes} == {"mbias"}  # only the recipes asked for

    again = CascadePlan(ws, "base", overwrite=False, recipes=["mbias"])
    _run(again, broken="20260109_MBIAS_1x1_4178e0")
    kinds = {o.product: o.kind for o in again.outcomes}
    assert kinds[failed.product] == "failed_before"  # same inputs: not redone
    assert [r.error_type for r in again.reports().critical] == ["FailedBefore"]


def test_nothing_predicted_is_a_clear_error(tmp_path: Path) -> None:
    from astroflow.models.errors import ConfigError

    (tmp_path / "ws").mkdir()
    ws = Workspace.open(tmp_path / "ws", writable=True)
    begin_prepare(ws.ref, DEFAULT_RULESET, refresh=False)
    with pytest.raises(ConfigError, match="nothing predicted"):
        CascadePlan(ws, "base", overwrite=False, recipes=None)
