"""The workspace: the fast header scan (agrees with astropy, names bad files) and QC files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroflow.models.errors import ConfigError, ProcessingError
from astroflow.storage.organiser.headers import read_header
from astroflow.storage.organiser.workspace import QC_DEFAULTS, Workspace


@pytest.fixture
def frame(tmp_path: Path) -> Path:
    hdr = fits.Header()
    hdr["IMAGETYP"] = "Light Frame"
    hdr["OBJECT"] = "O'Brien's field"  # quotes are doubled in FITS
    hdr["EXPTIME"] = 12.5
    hdr["NCOMBINE"] = 3
    hdr["FLAG"] = True
    hdr["OFF"] = False
    hdr["BIG"] = 1.5e-20
    hdr["HIERARCH ESO DPR CATG"] = "CALIB"
    hdr["HIERARCH ESO DET BINX"] = 2
    for i in range(60):  # push END into a second block
        hdr[f"PAD{i}"] = i
    hdr["LATE"] = "after the first block"
    path = tmp_path / "f.fits"
    fits.PrimaryHDU(np.zeros((2, 2), np.float32), hdr).writeto(path)
    return path


def test_scan_matches_astropy(frame: Path) -> None:
    wanted = {
        "IMAGETYP",
        "OBJECT",
        "EXPTIME",
        "NCOMBINE",
        "FLAG",
        "OFF",
        "BIG",
        "ESO DPR CATG",
        "ESO DET BINX",
        "LATE",
        "MISSING",
    }
    got = read_header(frame, wanted)
    full = fits.getheader(frame)
    assert "MISSING" not in got
    for key, value in got.items():
        assert value == full[key], key
        assert type(value) is type(full[key]), key
    assert got["OBJECT"] == "O'Brien's field"
    assert got["ESO DET BINX"] == 2


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not fits at all" * 300, "no SIMPLE card"),
        (b"SIMPLE  =                    T" + b" " * 50, "truncated"),
    ],
    ids=["garbage", "truncated"],
)
def test_bad_files_are_named(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.fits"
    path.write_bytes(content)
    with pytest.raises(ProcessingError, match=match) as info:
        read_header(path, {"IMAGETYP"})
    assert "bad.fits" in str(info.value)


# -- QC files: validated and layered ---------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    return Workspace.open(root)


BAD_QC = {
    "unknown-recipe": (
        "mflt:\n  mean: [0.9, 1.1]\n",
        r"unknown recipe 'mflt' \(known: mbias, mbpm, mdark, mflat, reduce\)",
    ),
    "unknown-metric": ("mflat:\n  meen: [0.9, 1.1]\n", r"unknown metric mflat\.meen \(known for"),
    "not-numbers": ("mbias:\n  median: [low, 5]\n", r"mbias\.median must be \[min, max\]"),
    "inverted": ("mbias:\n  median: [10, 1]\n", r"mbias\.median is inverted: \[10, 1\]"),
    "not-a-mapping": ("- mbias\n", "must map recipe names"),
}


@pytest.mark.parametrize(("text", "message"), BAD_QC.values(), ids=BAD_QC.keys())
def test_bad_qc_file_is_refused_naming_file_and_key(ws: Workspace, text: str, message: str) -> None:
    ws.qc_file("base").parent.mkdir(parents=True)
    ws.qc_file("base").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        ws.qc_ranges("base")
    assert str(ws.qc_file("base")) in str(info.value)


def test_session_qc_file_overrides_only_what_it_names(ws: Workspace) -> None:
    defaults = ws.qc_ranges("base")
    ws.qc_file("base").parent.mkdir(parents=True)
    ws.qc_file("base").write_text("mflat:\n  mean: [0.5, 1.5]\n")
    ranges = ws.qc_ranges("base")
    assert ranges["mflat"]["mean"] == (0.5, 1.5)
    assert ranges["mflat"]["cold_fraction"] == defaults["mflat"]["cold_fraction"]
    assert ranges["mbias"] == defaults["mbias"]  # not dropped
    assert ranges["mdark"] == defaults["mdark"]


def test_new_session_gets_an_id_and_the_default_settings(ws: Workspace) -> None:
    first = ws.create_session()
    second = ws.create_session()
    for name in (first, second):
        assert len(name) <= 16
        assert name.replace("t", "").isdigit()
        assert ws.qc_file(name).read_text() == QC_DEFAULTS.read_text()
        assert (
            "rules: generic-ccd" in (ws.session_dir(name) / "settings" / "session.yaml").read_text()
        )
    assert first != second
    assert ws.session_row().name == second
