"""Two cascades started at once on one PostgreSQL workspace do nothing twice: the second
waits for the workspace's lock (ASTROFLOW_LOCK_WAIT_S), then finds every product made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from astroflow.flows.organiser import prepare_workspace
from astroflow.storage.database import Database
from astroflow.storage.files import TEMP_GLOB
from astroflow.storage.organiser import catalog
from tests.conftest import ROOT
from tests.organiser_data import make_workspace

pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.usefixtures("prefect_harness")]

_SCRIPT = """
import sys
from astroflow.flows.cascade import calibration_cascade
summary = calibration_cascade(sys.argv[1])
print("RESULT " + summary.model_dump_json())
"""


def test_two_cascades_at_once_on_postgres(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("ASTROFLOW_DATABASE_URL", pg_url)
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(9), shape=(32, 32))
    prepare_workspace(str(ws))
    env = dict(
        os.environ,
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        ASTROFLOW_DATABASE_URL=pg_url,
        ASTROFLOW_LOCK_WAIT_S="600",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(ws)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-4000:]
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT ") :]))
    made = [name for r in results for name in r["made"]]
    if len(made) != len(set(made)):  # say what happened before failing
        rows = catalog.status_rows(Database(ws), "base")
        print({n: rows.get(n) for n in sorted(set(made))})
    assert len(made) == len(set(made)), f"a product was made twice: {[r['made'] for r in results]}"
    assert len(made) == 12  # nothing lost: every product made exactly once, by one of them
    for r in results:  # each run saw every product, made by itself or by the other
        assert sorted(r["made"] + r["skipped"]) == sorted(made)
        assert r["failed"] == []
    # one after the other: the lock let one run make everything, the other made nothing
    assert sorted(len(r["made"]) for r in results) == [0, 12]
    statuses = catalog.statuses(Database(ws), "base")
    assert sorted(n for n, s in statuses.items() if s == "pass") == sorted(made)
    assert not list((ws / "sessions").rglob(TEMP_GLOB))  # no temporary file of a writer left
