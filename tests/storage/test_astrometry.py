"""The astrometry.net backend's errors: each names what is missing and where to put it."""

from __future__ import annotations

from pathlib import Path

import pytest

from astroflow.models.errors import AstrometryError
from astroflow.storage.astrometry import AstrometryNet, index_files, solver_available


def test_no_solver_on_the_path_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a real machine without solve-field
    (tmp_path / "index-1.fits").write_bytes(b"")
    monkeypatch.setenv("ASTROFLOW_ASTROMETRY_INDEX_DIR", str(tmp_path))
    with pytest.raises(AstrometryError, match=r"solve-field is not installed.*astrometry\.net"):
        AstrometryNet.from_settings()
    assert not solver_available()


def test_folders_without_index_files_are_named_with_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    (empty / "catalogue.fits").write_bytes(b"")  # not an index file by its name
    monkeypatch.setenv("ASTROFLOW_ASTROMETRY_INDEX_DIR", f"{empty}:{missing}")
    with pytest.raises(AstrometryError) as info:
        AstrometryNet.from_settings()
    message = str(info.value)
    assert "ASTROFLOW_ASTROMETRY_INDEX_DIR" in message
    assert f"{empty}:{missing}" in message
    assert not solver_available()


def test_index_files_are_found_by_the_names_astrometry_net_gives_them(tmp_path: Path) -> None:
    for name in ("index-4107.fits", "index-5203-07.fits.fz", "my.index.fits", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = [p.name for p in index_files([tmp_path, tmp_path / "absent"])]
    assert found == ["index-4107.fits", "index-5203-07.fits.fz", "my.index.fits"]
