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
