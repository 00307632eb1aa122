"""The bad-pixel mask's science: which flats are low and high, their ratio, ccdmask with the
rules' parameters, the dark's hot pixels."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.nddata import CCDData
from ccdproc import ccdmask

from astroflow.models.errors import CalibrationError
from astroflow.models.rules import BadPixelMask
from astroflow.processing.bad_pixels import (
    BPM_FLAT,
    BPM_HOT,
    bad_pixel_mask,
    flat_ratio,
    hot_pixels,
    qc_bad_pixels,
    ratio_mask,
    split_levels,
)


@pytest.mark.parametrize(
    ("levels", "low", "high"),
    [
        ((1000.0, 3000.0), [0], [1]),
        ((3000.0, 1000.0, 2900.0, 1100.0), [1, 3], [0, 2]),
        ((1000.0, 1500.0, 3000.0), [0, 1], [2]),  # sqrt(1000 * 3000) = 1732
    ],
    ids=["two", "interleaved", "geometric-cut"],
)
def test_flats_split_at_the_geometric_mean_of_the_extremes(
    levels: tuple[float, ...], low: list[int], high: list[int]
) -> None:
    assert split_levels(levels, 1.5) == (low, high)


@pytest.mark.parametrize(
    ("levels", "match"),
    [
        ((1000.0, 1200.0), "flats of two levels"),
        ((0.0, 3000.0), "must be positive"),
        ((float("nan"), 3000.0), "must be positive"),
    ],
    ids=["one-level", "zero", "nan"],
)
def test_levels_a_mask_cannot_come_from_are_refused_by_name(
    levels: tuple[float, ...], match: str
) -> None:
    with pytest.raises(CalibrationError, match=match) as info:
        split_levels(levels, 1.5, "MBPM_set")
    assert "MBPM_set" in str(info.value)


def test_the_ratio_is_zero_where_the_faint_flat_has_no_signal() -> None:
    high = np.array([[3.0, 6.0], [np.nan, 2.0]])
    low = np.array([[1.0, 0.0], [1.0, -1.0]])
    np.testing.assert_array_equal(flat_ratio(high, low), [[3.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize(
    "options",
    [
        BadPixelMask(),
        BadPixelMask(findbadcolumns=True, ngood=3, lsigma=6, hsigma=6),
        BadPixelMask(byblocks=True, ncsig=10, nlsig=10),
    ],
    ids=["defaults", "bad-columns", "by-blocks"],
)
def test_the_mask_is_ccdmask_with_the_rules_parameters(
    rng: np.random.Generator, options: BadPixelMask
) -> None:
    ratio = rng.normal(3.0, 0.01, (60, 50))
    ratio[:, 12] = 2.4  # a column losing signal at the bright level
    ratio[20:40, 30] = 3.3  # part of a hot column
    ratio[5, 5] = 0.0  # dead
    ours = ratio_mask(ratio, options)
    theirs = ccdmask(
        CCDData(ratio, unit="adu"),
        **options.model_dump(exclude={"min_level_ratio", "hot_sigma"}),
    )
    np.testing.assert_array_equal(ours, theirs)
    assert ours[:, 12].all()
    assert ours[5, 5]
    assert ours[20:40, 30].all()


def test_hot_pixels_of_the_dark_and_the_mask_values(rng: np.random.Generator) -> None:
    dark = rng.normal(0.5, 0.05, (30, 30))
    dark[4, 7] = 5.0
    dark[10, 10] = np.nan
    hot = hot_pixels(dark, 10.0)
    assert np.argwhere(hot).tolist() == [[4, 7]]
    flats = np.zeros((30, 30), bool)
    flats[:, 3] = True
    flats[4, 7] = True
    mask = bad_pixel_mask(flats, hot)
    assert mask.dtype == np.uint8
    assert mask[4, 7] == BPM_FLAT | BPM_HOT
    assert mask[0, 3] == BPM_FLAT
    assert mask[0, 0] == 0
    qc = qc_bad_pixels(mask, 3.0)
    assert qc == {
        "bad_fraction": pytest.approx(31 / 900),  # the column and the hot pixel
        "hot_pixels": 1.0,
        "bad_columns": 1.0,
        "level_ratio": 3.0,
    }
