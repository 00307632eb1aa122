"""The command line: help, and `repo check` on local folders and Azurite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from astroflow.flows.cli import app
from tests.conftest import AZURE_ENV

runner = CliRunner()


def test_console_script_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from astroflow.flows.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "repo" in out


def test_repo_check_local(tmp_path: Path) -> None:
    (tmp_path / "m42").mkdir()
    result = runner.invoke(app, ["repo", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "reachable:  yes" in result.output
    assert "writable:   yes" in result.output
    assert "m42" in result.output


def test_repo_check_bad_scheme() -> None:
    result = runner.invoke(app, ["repo", "check", "ftp://x/y"])
    assert result.exit_code == 2
    assert "unsupported repository URL scheme" in result.output


@pytest.mark.azure
def test_repo_check_azure(azure_container: str) -> None:
    result = runner.invoke(
        app, ["repo", "check", f"az://{azure_container}/sub", "--azure-conn-env", AZURE_ENV]
    )
    assert result.exit_code == 0, result.output
    assert "(azure)" in result.output
    assert "writable:   yes" in result.output


def test_repo_check_missing_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_CONN", raising=False)
    result = runner.invoke(app, ["repo", "check", "az://abc/x", "--azure-conn-env", "NOPE_CONN"])
    assert result.exit_code == 2
    assert "NOPE_CONN" in result.output


@pytest.mark.slow
def test_server_is_kept_for_the_user_and_used_by_later_commands(
    tmp_path: Path, prefect_harness: object
) -> None:
    """`astroflow server start|status|stop` (Prefect's own commands underneath), a flow
    command with no Prefect configured runs on that server (no temporary server of its own),
    and one whose folder has a prefect.toml naming another API runs there instead."""
    import json
    import os

    import httpx
    import numpy as np
    from prefect.settings import PREFECT_API_URL

    from tests.organiser_data import make_workspace

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "ASTROFLOW_CACHE_DIR": str(tmp_path / "cache"),
        "ASTROFLOW_AUTOSTART_SERVER": "false",  # prove the recorded server is what is used
    }
    exe = str(Path(sys.executable).with_name("astroflow"))

    def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args], env=env, capture_output=True, text=True, timeout=300, check=False, cwd=cwd
        )

    assert cli("server", "status").returncode == 1
    started = cli("server", "start")
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        assert "Prefect server: http://127.0.0.1:" in started.stdout
        record = json.loads((tmp_path / "cache" / "prefect-server" / "server.json").read_text())
        status = cli("server", "status")
        assert status.returncode == 0
        assert record["url"] in status.stdout
        ws = tmp_path / "ws"
        make_workspace(ws, np.random.default_rng(5))
        prep = cli("prep", str(ws))
        assert prep.returncode == 0, prep.stderr[-3000:]
        assert "Starting temporary server" not in prep.stderr
        runs = httpx.post(f"{record['url']}/flow_runs/filter", json={}, timeout=10).json()
        assert any(r["state_type"] == "COMPLETED" for r in runs)
        # a folder whose prefect.toml names another API (the test harness's): the run goes
        # there, although astroflow's server runs
        other = str(PREFECT_API_URL.value())
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "prefect.toml").write_text(f'[api]\nurl = "{other}"\n')
        ws2 = tmp_path / "ws-toml"
        make_workspace(ws2, np.random.default_rng(6))
        prep = cli("prep", str(ws2), cwd=elsewhere)
        assert prep.returncode == 0, prep.stderr[-3000:]

        def names(api: str) -> set[str]:
            found = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
            return {r["name"] for r in found}

        assert "prepare-ws-toml" in names(other)
        assert "prepare-ws-toml" not in names(record["url"])
    finally:
        stopped = cli("server", "stop")
    assert stopped.returncode == 0
    assert cli("server", "status").returncode == 1
