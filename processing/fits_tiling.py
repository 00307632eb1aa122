"""WWT's tiled FITS: the study pyramid of a science image as float tiles, as toasty makes it
(``tile-study`` of a FITS file, then its cascade).

The geometry is the PNG pyramid's (:func:`processing.wcs.study_geometry`: the image centred
in a square of ``p2n`` pixels, rows from the top). Tiles hold the image's values (float32;
float64 for a float64 image), NaN where there is no data; every tile the image touches is
made at the finest level, a parent wherever one of its four children exists, its values the
NaN-ignoring mean of each 2x2 block (toasty's ``averaging_merger``). Each tile knows the
least and greatest value of the finest pixels below it (toasty's ``DATAMIN``/``DATAMAX``),
and the pyramid's top tile gives the data range and the 0.5-99.5 % cut that WWT's web client
starts its stretch from. Rows are kept top-down here; the FITS files store them bottom-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from astroflow.models.ingest import StretchHints
from astroflow.processing.wcs import TILE, study_geometry

__all__ = [
    "FitsTile",
    "as_card_value",
    "fits_study_tiles",
    "nanmean_2x2",
    "stretch_hints",
]

#: The cut WWT's client starts from: percentiles of the top tile (toasty's ``cascade``).
CUT_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True, slots=True)
class FitsTile:
    """One 256x256 float tile: level (0 = top), column x and row y (0-based, from the
    top), its values (row 0 at the top, as displayed; a read-only view into the pyramid's
    canvas) and the range of the finest pixels below it (None when they are all NaN)."""

    level: int
    x: int
    y: int
    values: np.ndarray
    data_min: np.floating | None  # in the tiles' dtype, as a FITS card writes it
    data_max: np.floating | None

    @property
    def name(self) -> str:
        """Path in WWT's tiled-FITS layout ``{level}/{y}/{y}_{x}.fits`` (the WTML's
        ``{1}/{3}/{3}_{2}.fits``)."""
        return f"{self.level}/{self.y}/{self.y}_{self.x}.fits"


def nanmean_2x2(block: np.ndarray) -> np.ndarray:
    """The NaN-ignoring mean of each 2x2 block (all-NaN blocks give NaN), in the block's
    dtype: ``(2h, 2w) -> (h, w)``; toasty's ``averaging_merger`` number for number.

    ``np.nanmean`` over axes (1, 3) of toasty's bottom-up buffer adds each row's pair of
    pixels first, then the two rows (``(a00 + a01) + (a10 + a11)`` in the block's dtype,
    the bottom row as row 0), and divides in float64 by the count of non-NaN pixels; done
    here on four strided views (some 10x faster than the multi-axis reduction), without its
    warning for all-NaN blocks (``warnings`` filters are process-wide; tiles are made in
    threads).
    """
    bottom_up = block[::-1]
    blank = np.isnan(bottom_up)
    values = np.where(blank, block.dtype.type(0), bottom_up)
    good = (~blank).view(np.uint8)
    total = values[0::2, 0::2] + values[0::2, 1::2]
    total += values[1::2, 0::2] + values[1::2, 1::2]
    count = good[0::2, 0::2] + good[0::2, 1::2]
    count += good[1::2, 0::2]
    count += good[1::2, 1::2]
    with np.errstate(invalid="ignore", divide="ignore"):  # (thread-local in numpy)
        mean = np.true_divide(total, count, dtype=np.float64)
    return mean.astype(block.dtype)[::-1]


Range = tuple[np.floating | None, np.floating | None]


def _ranges(rows: np.ndarray, columns: range) -> dict[int, Range]:
    """The NaN-ignoring range of each tile of a band of tile rows (by tile column): each
    column's first, then each tile's (``fmin``/``fmax`` skip NaN without a warning)."""
    lows, highs = np.fmin.reduce(rows, axis=0), np.fmax.reduce(rows, axis=0)
    out: dict[int, Range] = {}
    for tx in columns:
        span = slice(tx * TILE, (tx + 1) * TILE)
        lo, hi = np.fmin.reduce(lows[span]), np.fmax.reduce(highs[span])
        out[tx] = (lo, hi) if np.isfinite(lo) else (None, None)
    return out


def _merged(ranges: list[Range]) -> Range:
    lows = [lo for lo, _ in ranges if lo is not None]
    highs = [hi for _, hi in ranges if hi is not None]
    return (min(lows) if lows else None, max(highs) if highs else None)


def fits_study_tiles(image: Any) -> Iterator[FitsTile]:
    """Yield every tile of the tiled-FITS pyramid of ``image``, the finest level first and
    the top tile (level 0) last.

    Parameters
    ----------
    image
        ``(H, W)`` values, row 0 at the top (an array, or an array-like that reads bands of
        rows: only one band of tile rows and a half-resolution canvas are held at a time).
    """
    height, width = image.shape[:2]
    dtype = np.float64 if np.dtype(image.dtype) == np.float64 else np.float32
    p2n, levels, x0, y0 = study_geometry(width, height)
    below = np.full((p2n // 2, p2n // 2), np.nan, dtype) if levels > 0 else None
    ranges: dict[tuple[int, int], Range] = {}
    tx_range = range(x0 // TILE, (x0 + width - 1) // TILE + 1)
    for ty in range(y0 // TILE, (y0 + height - 1) // TILE + 1):
        # a fresh band per row of tiles: its tiles are views, written while the next is cut
        band = np.full((TILE, p2n), np.nan, dtype)
        top = ty * TILE
        r0, r1 = max(top, y0), min(top + TILE, y0 + height)
        band[r0 - top : r1 - top, x0 : x0 + width] = image[r0 - y0 : r1 - y0]
        for tx, extent in _ranges(band, tx_range).items():
            ranges[(tx, ty)] = extent
            yield FitsTile(levels, tx, ty, band[:, tx * TILE : (tx + 1) * TILE], *extent)
        if below is not None:
            below[ty * (TILE // 2) : (ty + 1) * (TILE // 2)] = nanmean_2x2(band)
    level = levels - 1
    while below is not None:
        children, ranges = ranges, {}
        for (cx, cy), extent in children.items():
            ranges.setdefault((cx // 2, cy // 2), extent)
            ranges[(cx // 2, cy // 2)] = _merged([ranges[(cx // 2, cy // 2)], extent])
        for tx, ty in sorted(ranges, key=lambda t: (t[1], t[0])):
            values = below[ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE]
            yield FitsTile(level, tx, ty, values, *ranges[(tx, ty)])
        below = nanmean_2x2(below) if level > 0 else None
        level -= 1


def as_card_value(value: np.floating | None) -> float | None:
    """A value as a FITS card holds it (astropy writes ``str(value)``, at most 20
    characters): what a reader of a tile's ``DATAMIN`` gets back."""
    if value is None:
        return None
    from astropy.io.fits import Card

    return float(Card.fromstring(Card("DATAMIN", value).image).value)


def stretch_hints(top: FitsTile) -> StretchHints:
    """The WTML's data range and cut from the pyramid's top tile: its ``DATAMIN`` and
    ``DATAMAX`` as its FITS header holds them, and the 0.5 and 99.5 percentiles of its
    values (NaN ignored), as toasty's cascade sets them."""
    finite = top.values[np.isfinite(top.values)]  # (np.nanpercentile's numbers, unwarned)
    low, high = np.percentile(finite, CUT_PERCENTILES) if finite.size else (np.nan, np.nan)
    return StretchHints(
        data_min=as_card_value(top.data_min),
        data_max=as_card_value(top.data_max),
        cut_low=float(low),
        cut_high=float(high),
    )
