"""Render science arrays (FITS) to 8-bit grey + alpha for tiling.

Interval: astropy's ``AsymmetricPercentileInterval(0.5, 99.5)`` over the finite pixels
(sampled to at most 1e6 pixels), so that a few hot pixels or a dark border do not set the
range. Stretch: ``LinearStretch`` (the interval does the work; science users can re-stretch
from the FITS). Both are computed here with numpy: the interval's ``get_limits`` is
``np.percentile`` over the finite values and the linear stretch of slope 1 is the identity
(the numbers are checked against astropy's in the tests), which spares the ingest of a FITS
image the import of ``astropy.visualization`` (a tenth of the whole job). Non-finite pixels
(NaN, inf: blank or masked data) become fully transparent, so they show as empty sky in WWT.
"""

from __future__ import annotations

import numpy as np

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
    vmin, vmax = np.percentile(sample, (LOWER_PERCENTILE, UPPER_PERCENTILE))
    if not vmax > vmin:
        vmax = vmin + 1.0
    return float(vmin), float(vmax)


def render(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Render any array of values to grey + alpha uint8 (shape ``values.shape + (2,)``)."""
    # float32 throughout and in place: a band of a large image is megabytes per temporary
    chunk = np.array(values, dtype=np.float32)
    good = np.isfinite(chunk)
    chunk[~good] = vmin
    chunk -= vmin
    chunk /= vmax - vmin
    np.clip(chunk, 0.0, 1.0, out=chunk)  # (LinearStretch: the identity on [0, 1])
    chunk *= 255.0
    np.rint(chunk, out=chunk)
    out = np.empty((*chunk.shape, 2), np.uint8)
    out[..., 0] = chunk  # exact: whole numbers in [0, 255]
    out[..., 1] = good
    out[..., 1] *= 255
    return out


def grey_to_rgba(grey_alpha: np.ndarray) -> np.ndarray:
    """``(..., 2)`` grey + alpha as ``(..., 4)`` RGBA (R = G = B)."""
    return grey_alpha[..., [0, 0, 0, 1]]


class RenderedRows:
    """A 2-D science array seen as an ``(H, W, 2)`` grey + alpha uint8 image, rendered on
    access.

    Indexing renders only what is asked for (a band of rows for tiling, a strided sample for
    the thumbnail), so the full 8-bit image is never held in memory.
    """

    ndim = 3
    dtype = np.dtype(np.uint8)
    binary_alpha = True  # alpha is 0 (non-finite, grey 0 too) or 255: see study_tiles

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.vmin, self.vmax = display_limits(data)
        self.shape = (data.shape[0], data.shape[1], 2)

    def __getitem__(self, key: object) -> np.ndarray:
        return render(self.data[key], self.vmin, self.vmax)
