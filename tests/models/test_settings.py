"""Which Prefect API the user configured: every place Prefect reads its settings from."""

from __future__ import annotations

from pathlib import Path

import pytest

from astroflow.models.settings import prefect_api_configured

B = "http://127.0.0.1:4444/api"


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with no Prefect settings, and no profile."""
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(tmp_path / "no-profiles.toml"))
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.mark.parametrize(
    ("file", "text"),
    [
        (".env", f"PREFECT_API_URL={B}\n"),
        ("prefect.toml", f'[api]\nurl = "{B}"\n'),
        ("pyproject.toml", f'[tool.prefect.api]\nurl = "{B}"\n'),
    ],
    ids=["dotenv", "prefect-toml", "pyproject"],
)
def test_an_api_configured_in_a_settings_file_counts(bare: Path, file: str, text: str) -> None:
    assert not prefect_api_configured()
    (bare / file).write_text(text)
    assert prefect_api_configured()


def test_the_environment_and_the_profile_count(
    bare: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(f'active = "ops"\n[profiles.ops]\nPREFECT_API_URL = "{B}"\n')
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(profiles))
    assert prefect_api_configured()
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(tmp_path / "none.toml"))
    assert not prefect_api_configured()
    monkeypatch.setenv("PREFECT_API_URL", B)
    assert prefect_api_configured()


def test_prefect_reads_the_same_files(bare: Path) -> None:
    """The files above are Prefect's own sources: its settings see the same URL."""
    import subprocess
    import sys

    (bare / "prefect.toml").write_text(f'[api]\nurl = "{B}"\n')
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from prefect.settings import get_current_settings as g; print(g().api.url)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=bare,
    )
    assert out.stdout.strip() == B
