"""The organiser's task bodies without Prefect: a workspace prepared by plain calls, each
step's outcome checked as the next one sees it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astroflow.models.errors import ConfigError
from astroflow.models.rules import DEFAULT_RULESET, load_rules
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.workspace import Workspace, read_sof
from astroflow.tasks.organiser_work import (
    begin_prepare,
    open_session,
    organise_new_frames,
    predict,
    qc_table,
    refresh_session_sofs,
    sanity_check,
    sof_files,
    uncompress,
    write_session_sofs,
)
from tests.organiser_data import make_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    make_workspace(tmp_path / "ws", np.random.default_rng(7))
    return Workspace.open(tmp_path / "ws", writable=True)


def test_prepare_by_plain_calls(ws: Workspace) -> None:
    rules = load_rules(DEFAULT_RULESET)
    session = begin_prepare(ws.ref, DEFAULT_RULESET, refresh=False)
    assert session == "base"
    unpacked, failed = uncompress(ws.ref)
    assert len(unpacked) == 2
    assert not failed
    added, read, reports = organise_new_frames(ws.ref, rules)
    rejected = {r.inputs[0] for r in reports}
    assert {"corrupt.fits", "focus.fits", "noheader.fits", "readme.txt"} <= rejected
    fits_rejected = [r for r in reports if r.error_type != "NotFits"]
    assert added == read - len(fits_rejected) > 0  # every header read once
    assert sorted(p.name for p in (ws.root / "misc").iterdir()) >= sorted(rejected)
    assert sanity_check(ws.ref, rules)[:3] == (0, 0, 0)  # the table and raw/ agree
    n_sets, incomplete, n_products, changed = predict(ws.ref, rules)
    assert changed
    assert n_sets == n_products > incomplete >= 0
    assert predict(ws.ref, rules)[3] is False  # same inventory: the plan is not redone
    written, _ = write_session_sofs(ws.ref, rules, session)
    assert written == n_sets
    assert write_session_sofs(ws.ref, rules, session) == (0, False)  # nothing changed
    sofs = refresh_session_sofs(ws.ref, rules, session)
    assert len(sofs) == n_sets
    first = ws.sof_dir(session) / f"{sofs[0].set_name}.sof"
    assert sof_files(first) == {line.path for line in sofs[0].lines}
    assert [(x.path, x.tag) for x in read_sof(first)] == [(x.path, x.tag) for x in sofs[0].lines]


def test_refresh_forgets_the_inventory(ws: Workspace) -> None:
    rules = load_rules(DEFAULT_RULESET)
    begin_prepare(ws.ref, DEFAULT_RULESET, refresh=False)
    uncompress(ws.ref)
    organise_new_frames(ws.ref, rules)
    assert catalog.frame_stats(ws.database())
    begin_prepare(ws.ref, DEFAULT_RULESET, refresh=True)
    assert not catalog.frame_stats(ws.database())
    added, _, _, _ = sanity_check(ws.ref, rules)  # every raw frame read again
    assert added == len(list((ws.root / "raw").rglob("*.fits")))


def test_open_session_sweeps_only_dead_caches(ws: Workspace) -> None:
    begin_prepare(ws.ref, DEFAULT_RULESET, refresh=False)
    assert open_session(ws.ref, "base") == 0
    assert ws.sof_dir("base").is_dir()


def test_qc_table_judges_each_value_once(ws: Workspace) -> None:
    begin_prepare(ws.ref, DEFAULT_RULESET, refresh=False)
    db = ws.database()
    common = {"session": "base", "unit": None, "comment": None, "min": None, "max": None}
    common["flag"] = False
    catalog.add_qc(
        db,
        [
            {**common, "product": "B", "recipe": "mbias", "qc_name": "ron", "value": 5.0},
            {**common, "product": "B", "recipe": "mbias", "qc_name": "noise", "value": 500.0},
            {**common, "product": "B", "recipe": "mbias", "qc_name": "odd", "value": 1.0},
            {**common, "product": "F", "recipe": "mflat", "qc_name": "mean", "value": None},
        ],
    )
    rows = {(r["product"], r["metric"]): r for r in qc_table(ws.ref, "base")}
    assert rows["B", "ron"]["verdict"] == "pass"
    assert (rows["B", "ron"]["lo"], rows["B", "ron"]["hi"]) == (0, 100)
    assert rows["B", "noise"]["verdict"] == "fail"
    assert rows["B", "odd"]["verdict"] == "-"  # no range
    assert rows["F", "mean"]["verdict"] == "fail"  # no value fails a range


def test_a_bad_session_qc_file_is_named(ws: Workspace) -> None:
    begin_prepare(ws.ref, DEFAULT_RULESET, refresh=False)
    ws.qc_file("base").write_text("mbias:\n  nonsense: [0, 1]\n")
    with pytest.raises(ConfigError, match=r"qc\.yaml: unknown metric mbias\.nonsense"):
        qc_table(ws.ref, "base")
