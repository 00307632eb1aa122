"""FITS rendering: the interval and stretch are astropy's numbers, computed without it."""

from __future__ import annotations

import numpy as np
from astropy.visualization import AsymmetricPercentileInterval, LinearStretch

from astroflow.processing.render import (
    LOWER_PERCENTILE,
    UPPER_PERCENTILE,
    display_limits,
    grey_to_rgba,
    render,
)


def test_limits_and_grey_levels_equal_astropy_visualization(rng: np.random.Generator) -> None:
    data = rng.normal(1000.0, 30.0, (700, 900)).astype(np.float32)
    data[5, 7] = 1e9  # a hot pixel does not set the range
    data[:3] = np.nan
    vmin, vmax = display_limits(data)  # under 1e6 pixels: every pixel counts
    want = AsymmetricPercentileInterval(LOWER_PERCENTILE, UPPER_PERCENTILE).get_limits(data)
    assert (vmin, vmax) == (float(want[0]), float(want[1]))
    grey = render(data, vmin, vmax)
    clipped = np.clip((np.nan_to_num(data, nan=vmin) - vmin) / (vmax - vmin), 0, 1)
    expect = np.round(LinearStretch()(clipped.astype(np.float32), clip=True) * 255)
    np.testing.assert_array_equal(grey[..., 0], expect.astype(np.uint8))
    assert (grey[:3, :, 1] == 0).all()  # NaN: transparent
    assert (grey[3:, :, 1] == 255).all()
    rgba = grey_to_rgba(grey)
    assert rgba.shape == (700, 900, 4)
    np.testing.assert_array_equal(rgba[..., 1], grey[..., 0])


def test_limits_of_a_large_image_are_astropys_from_a_sample(rng: np.random.Generator) -> None:
    """Over 1e6 pixels the limits come from a sample: they stay within a fraction of the
    noise of astropy's limits over every pixel, and the image's structure (a gradient, a
    NaN border, hot pixels) does not bias them."""
    rows, cols = 2300, 2500
    data = rng.normal(1000.0, 30.0, (rows, cols)).astype(np.float32)
    data += np.linspace(0.0, 200.0, cols, dtype=np.float32)[None, :]
    data[rng.integers(0, rows, 500), rng.integers(0, cols, 500)] = 1e9
    data[:, :40] = np.nan
    vmin, vmax = display_limits(data)
    want = AsymmetricPercentileInterval(LOWER_PERCENTILE, UPPER_PERCENTILE).get_limits(data)
    assert abs(vmin - want[0]) < 3.0  # 0.1 sigma of the noise
    assert abs(vmax - want[1]) < 3.0
