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
    if int(hdu.fileinfo()["datLoc"]) + size > path.stat().st_size:
        raise ProcessingError("truncated (data shorter than the header says)")


# Rows at least this far apart (the display interval's sample, the thumbnail's) are read one
# by one: reading the bands between them would read 4x as many bytes or more.
SPARSE_STEP = 4
_STORED_DTYPES = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def _stored_as_is(hdul: Any, hdu: Any) -> tuple[str, int, np.dtype] | None:
    """``(file, data offset, dtype)`` of an HDU whose stored numbers are its values (no
    BSCALE/BZERO, no integer BLANK: astropy would only copy them), else None."""
    header = hdu.header
    try:
        bitpix = int(header["BITPIX"])
        unscaled = float(header.get("BSCALE", 1)) == 1 and float(header.get("BZERO", 0)) == 0
        path = hdul.filename()
        offset = int(hdu.fileinfo()["datLoc"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not unscaled or (bitpix > 0 and "BLANK" in header) or bitpix not in _STORED_DTYPES:
        return None
    return (path, offset, np.dtype(_STORED_DTYPES[bitpix])) if path else None


class FitsRows:
    """A 2-D FITS image read from disk on access (astropy ``section``, which applies
    BSCALE/BZERO), as float32.

    The tiler reads one band of rows at a time, the display interval and the thumbnail strided
    samples, so the full array is never held in memory (toasty holds it). Supports
    ``[rows]`` and ``[rows, cols]`` with slices of any step. Rows far apart (a sample) are
    read one by one, straight from the file, when the stored numbers are the values (the
    usual float image); the bands in between are then never read.
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
        self._stored = _stored_as_is(hdul, hdu)

    def _stored_rows(self, r0: int, r1: int) -> np.ndarray:
        return np.asarray(self._hdu.section[(*self._lead, slice(r0, r1), slice(None))], np.float32)

    def _sparse_rows(self, index: np.ndarray, cols: slice) -> np.ndarray | None:
        """The stored rows ``index`` (``cols`` of each), read one row at a time, or None when
        that does not pay (rows close together) or the stored numbers are not the values."""
        if self._stored is None or index.size < 2 or np.abs(np.diff(index)).min() < SPARSE_STEP:
            return None
        path, offset, dtype = self._stored
        width = self.shape[1]
        row_bytes = width * dtype.itemsize
        out = np.empty((index.size, len(range(*cols.indices(width)))), np.float32)
        row = np.empty(width, dtype)
        buffer = memoryview(row).cast("B")
        with open(path, "rb", buffering=0) as f:
            for i, r in enumerate(index.tolist()):
                f.seek(offset + r * row_bytes)
                if f.readinto(buffer) != row_bytes:
                    raise ProcessingError(f"{path}: truncated (row {r} is short)")
                out[i] = row[cols]
        return out

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
        sparse = self._sparse_rows(index, cols)
        if sparse is not None:
            return sparse
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
