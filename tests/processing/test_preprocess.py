"""Image sections and the pre-processing chain against ccdproc's own functions."""

from __future__ import annotations

import astropy.units as u
import ccdproc
import numpy as np
import pytest
from astropy.modeling.models import Polynomial1D
from astropy.nddata import CCDData
from ccdproc.utils.slices import slice_from_string

from astroflow.models.errors import CalibrationError, ProcessingError
from astroflow.models.rules import Detector
from astroflow.processing.preprocess import geometry, preprocess, preprocess_frame
from astroflow.processing.sections import parse_section


@pytest.mark.parametrize(
    "section",
    [
        "[   4:  13,   1: 520]",
        "[  17: 528,   1: 520]",
        "[2048:1,1:10]",
        "[10:3,1:5]",
        "[*,-*]",
        "[5:5,3:7]",
    ],
    ids=["saao-biassec", "saao-trimsec", "reversed-to-1", "reversed", "stars", "one-column"],
)
def test_sections_are_ccdprocs_slices(section: str) -> None:
    assert parse_section(section) == slice_from_string(section, fits_convention=True)


@pytest.mark.parametrize(
    "section",
    ["4:13,1:520", "[4:13]", "[0:13,1:5]", "[a:b,1:2]"],
    ids=["no-brackets", "one-axis", "zero", "letters"],
)
def test_bad_sections_are_named(section: str) -> None:
    with pytest.raises(ProcessingError, match="image section"):
        parse_section(section)


@pytest.mark.parametrize(
    ("axis", "order", "median"),
    [(1, None, True), (1, None, False), (0, None, True), (1, 2, True)],
    ids=["rows-median", "rows-mean", "columns-median", "rows-poly2"],
)
def test_overscan_equals_ccdprocs(axis: int, order: int | None, median: bool) -> None:
    rng = np.random.default_rng(9)
    raw = rng.normal(500.0, 5.0, (60, 70)) + np.linspace(0, 20, 60)[:, None]
    raw = np.round(raw).astype(np.uint16)
    section = "[61:70,1:60]" if axis == 1 else "[1:70,51:60]"
    model = Polynomial1D(order) if order is not None else None
    ref = ccdproc.subtract_overscan(
        CCDData(raw, unit="adu"),
        fits_section=section,
        median=median,
        overscan_axis=axis,
        model=model,
    )
    ours = preprocess(
        raw,
        overscans=[(parse_section(section), axis)],
        method="median" if median else "mean",
        order=order,
    )
    np.testing.assert_allclose(ours.data, ref.data, rtol=1e-9, atol=1e-9)


def test_geometry_reads_the_header_and_names_what_is_missing() -> None:
    detector = Detector(
        overscan=("BIASSEC",),
        trim="[1:8,1:8]",
        gain="GAIN",
        read_noise=4.5,
        required=("overscan", "gain"),
    )
    header = {"BIASSEC": "[9:10,1:8]", "GAIN": 2.0}
    geo = geometry(detector, header, "f.fits", (8, 10))
    assert geo.gain == 2.0
    assert geo.read_noise == 4.5
    assert geo.overscans[0][1] == 1  # a column strip: one level per row
    raw = np.full((8, 10), 100.0)
    raw[:, 8:] = 40.0
    done = preprocess_frame(raw, geo, "median", None)
    np.testing.assert_array_equal(done.data, np.full((8, 8), 120.0))  # (100 - 40) x 2 e-/ADU
    with pytest.raises(CalibrationError, match=r"f\.fits: no GAIN in its header"):
        geometry(detector, {"BIASSEC": "[9:10,1:8]"}, "f.fits", (8, 10))
    with pytest.raises(CalibrationError, match="GAIN = 'high' is not a number"):
        geometry(detector, {**header, "GAIN": "high"}, "f.fits", (8, 10))


def test_gain_converts_to_electrons_as_ccdproc() -> None:
    raw = np.arange(20, dtype=np.float64).reshape(4, 5)
    ref = ccdproc.gain_correct(CCDData(raw, unit="adu"), 1.9 * u.electron / u.adu)
    np.testing.assert_allclose(preprocess(raw, gain=1.9).data, ref.data)
