"""Lazy row access to a 2-D FITS image on disk, shared by ingest (``storage.images``) and the
cascade (``storage.frames``); astropy only, so that neither drags in the other's imports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from astroflow.models.errors import ProcessingError


def require_complete(hdu: Any, path: Path) -> None:
    """Refuse an uncompressed image HDU whose data the file does not hold in full (a
    truncated download or copy), before anything is read lazily from it."""
    size = abs(hdu.header["BITPIX"]) // 8 * int(np.prod(hdu.shape))
    if hdu._data_offset + size > path.stat().st_size:
        raise ProcessingError("truncated (data shorter than the header says)")


class FitsRows:
    """A 2-D FITS image read from disk on access (astropy ``section``, which applies
    BSCALE/BZERO), as float32.

    The tiler reads one band of rows at a time, the display interval and the thumbnail strided
    samples, so the full array is never held in memory (toasty holds it). Supports
    ``[rows]`` and ``[rows, cols]`` with slices of any step.
    """

    ndim = 2
    dtype = np.dtype(np.float32)
    band_rows = 256  # rows read at a time (4 MB for a 4096-wide float32 image)

    def __init__(self, hdul: Any, hdu: Any, shape: tuple[int, int], flipped: bool = False) -> None:
        self._hdul = hdul
        self._hdu = hdu
        self._lead = (0,) * (len(hdu.shape) - 2)  # a (1, H, W) cube reads plane 0
        self.shape = shape
        self.flipped = flipped

    def _stored_rows(self, r0: int, r1: int) -> np.ndarray:
        return np.asarray(self._hdu.section[(*self._lead, slice(r0, r1), slice(None))], np.float32)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        if not isinstance(rows, slice) or not isinstance(cols, slice):
            raise TypeError("FitsRows supports [rows] and [rows, cols] slices only")
        height, width = self.shape
        if rows.step in (None, 1) and cols == slice(None) and not self.flipped:
            r0, r1, _ = rows.indices(height)  # a band (the tiler, the combiner): one read
            return self._stored_rows(r0, max(r0, r1))
        index = np.arange(height)[rows]  # rows of this view, in order
        if self.flipped:
            index = height - 1 - index
        out = np.empty((index.size, len(range(*cols.indices(width)))), np.float32)
        if index.size == 0:
            return out
        lo, hi = int(index.min()), int(index.max()) + 1
        for b0 in range(lo, hi, self.band_rows):
            b1 = min(hi, b0 + self.band_rows)
            wanted = np.nonzero((index >= b0) & (index < b1))[0]
            if wanted.size:
                out[wanted] = self._stored_rows(b0, b1)[index[wanted] - b0][:, cols]
        return out

    def flip(self) -> FitsRows:
        return FitsRows(self._hdul, self._hdu, self.shape, not self.flipped)

    def close(self) -> None:
        """Close the file (also for the flipped views that share it)."""
        self._hdul.close()
