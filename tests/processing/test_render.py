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
    vmin, vmax = display_limits(data)
    sample = data[:: 700 // 1000 or 1, :: 900 // 1000 or 1]
    want = AsymmetricPercentileInterval(LOWER_PERCENTILE, UPPER_PERCENTILE).get_limits(sample)
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
