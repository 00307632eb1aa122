"""Render science arrays (FITS) to 8-bit RGBA for tiling.

Interval: ``AsymmetricPercentileInterval(0.5, 99.5)`` over the finite pixels (sampled to at
most 1e6 pixels), so that a few hot pixels or a dark border do not set the range. Stretch:
``LinearStretch`` (the interval does the work; science users can re-stretch from the FITS). Grey
levels go to R = G = B; non-finite pixels (NaN, inf: blank or masked data) become fully
transparent, so they show as empty sky in WWT.
"""

from __future__ import annotations

import numpy as np
from astropy.visualization import AsymmetricPercentileInterval, LinearStretch

from astroflow.models.errors import ProcessingError

LOWER_PERCENTILE = 0.5
UPPER_PERCENTILE = 99.5


def display_limits(data: np.ndarray) -> tuple[float, float]:
    """``(vmin, vmax)`` of the interval over the finite pixels (sampled to ~1e6 pixels).

    Raises
    ------
    ProcessingError
        When the array is not 2-D or has no finite pixel.
    """
    if data.ndim != 2:
        raise ProcessingError(f"expected a 2-D image, got shape {data.shape}")
    sample = data[:: max(1, data.shape[0] // 1000), :: max(1, data.shape[1] // 1000)]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise ProcessingError("image has no finite pixel")
    vmin, vmax = AsymmetricPercentileInterval(LOWER_PERCENTILE, UPPER_PERCENTILE).get_limits(sample)
    if not vmax > vmin:
        vmax = vmin + 1.0
    return float(vmin), float(vmax)


def render(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Render any array of values to RGBA uint8 (shape ``values.shape + (4,)``)."""
    # float32 throughout and in place: a band of a large image is megabytes per temporary
    chunk = np.array(values, dtype=np.float32)
    good = np.isfinite(chunk)
    chunk[~good] = vmin
    chunk -= vmin
    chunk /= vmax - vmin
    np.clip(chunk, 0.0, 1.0, out=chunk)
    LinearStretch()(chunk, clip=True, out=chunk)
    chunk *= 255.0
    np.round(chunk, out=chunk)
    out = np.empty((*chunk.shape, 4), np.uint8)
    out[..., 0] = chunk  # exact: whole numbers in [0, 255]
    out[..., 1] = out[..., 0]
    out[..., 2] = out[..., 0]
    out[..., 3] = good
    out[..., 3] *= 255
    return out


class RenderedRows:
    """A 2-D science array seen as an ``(H, W, 4)`` uint8 image, rendered on access.

    Indexing renders only what is asked for (a band of rows for tiling, a strided sample for
    the thumbnail), so the full 8-bit image is never held in memory.
    """

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.vmin, self.vmax = display_limits(data)
        self.shape = (data.shape[0], data.shape[1], 4)

    def __getitem__(self, key: object) -> np.ndarray:
        return render(self.data[key], self.vmin, self.vmax)
