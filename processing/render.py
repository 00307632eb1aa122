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

from models.errors import ProcessingError

LOWER_PERCENTILE = 0.5
UPPER_PERCENTILE = 99.5


def fits_to_rgba(data: np.ndarray, rows_per_chunk: int = 512) -> np.ndarray:
    """Render a 2-D array to an ``(H, W, 4)`` uint8 image (same row order as ``data``).

    Raises
    ------
    ProcessingError
        When the array is not 2-D or has no finite pixel.
    """
    if data.ndim != 2:
        raise ProcessingError(f"expected a 2-D image, got shape {data.shape}")
    finite_sample = data[:: max(1, data.shape[0] // 1000), :: max(1, data.shape[1] // 1000)]
    finite_sample = finite_sample[np.isfinite(finite_sample)]
    if finite_sample.size == 0:
        raise ProcessingError("image has no finite pixel")
    vmin, vmax = AsymmetricPercentileInterval(LOWER_PERCENTILE, UPPER_PERCENTILE).get_limits(
        finite_sample
    )
    if not vmax > vmin:
        vmax = vmin + 1.0
    stretch = LinearStretch()
    out = np.empty((*data.shape, 4), np.uint8)
    scale = 1.0 / (vmax - vmin)
    for r0 in range(0, data.shape[0], rows_per_chunk):
        chunk = np.asarray(data[r0 : r0 + rows_per_chunk], dtype=np.float32)
        good = np.isfinite(chunk)
        norm = np.clip((np.where(good, chunk, vmin) - vmin) * scale, 0.0, 1.0)
        grey = np.round(stretch(norm, clip=True) * 255.0).astype(np.uint8)
        out[r0 : r0 + rows_per_chunk, :, 0] = grey
        out[r0 : r0 + rows_per_chunk, :, 1] = grey
        out[r0 : r0 + rows_per_chunk, :, 2] = grey
        out[r0 : r0 + rows_per_chunk, :, 3] = np.where(good, 255, 0)
    return out
