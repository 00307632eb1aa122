"""The organiser's fast header scan agrees with astropy and names bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroflow.models.errors import ProcessingError
from astroflow.storage.headers import read_header


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
