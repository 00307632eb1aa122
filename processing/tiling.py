"""Sparse WWT study pyramids from an image array.

The image (``H x W x C`` uint8, C = 3 or 4, row 0 at the top) is centred in a square of side
``p2n`` (see :func:`processing.wcs.study_geometry`). Top-level tiles are cut straight from the
image, one band of tile rows at a time, so memory stays near the image itself plus a
half-resolution canvas for the next level. Parents are the alpha-weighted mean of each 2x2
block of children: colour = sum(rgb * a) / sum(a), alpha = sum(a) / 4, both rounded to nearest.
For opaque pixels that is the plain 2x2 mean; transparent padding never darkens edges (toasty
averages padding in as zeros). Tiles whose alpha is zero everywhere are not emitted (sparse).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from astroflow.processing.wcs import TILE, study_geometry


@dataclass(frozen=True, slots=True)
class Tile:
    """One 256x256 RGBA tile: level (0 = top of the pyramid), column x, row y (0-based)."""

    level: int
    x: int
    y: int
    rgba: np.ndarray  # (256, 256, 4) uint8

    @property
    def name(self) -> str:
        """File name in the pipeline layout ``L{level}X{x}Y{y}.png``."""
        return f"L{self.level}X{self.x}Y{self.y}.png"


def count_tiles(width: int, height: int) -> int:
    """How many tiles :func:`study_tiles` emits for an opaque image of this size."""
    _, levels, x0, y0 = study_geometry(width, height)
    total = 0
    for level in range(levels, -1, -1):
        shift = levels - level
        x_lo, x_hi = x0 >> shift, (x0 + width - 1) >> shift
        y_lo, y_hi = y0 >> shift, (y0 + height - 1) >> shift
        total += ((x_hi // TILE) - (x_lo // TILE) + 1) * ((y_hi // TILE) - (y_lo // TILE) + 1)
    return total


def _downsample(block: np.ndarray) -> np.ndarray:
    """Alpha-weighted 2x2 mean of an (2h, 2w, 4) uint8 array -> (h, w, 4) uint8.

    Blocks of four opaque (or four transparent) pixels take the fast path, a plain rounded
    mean in uint16; only blocks mixing alpha values (image edges, masks) are weighted.
    """
    children = (block[0::2, 0::2], block[0::2, 1::2], block[1::2, 0::2], block[1::2, 1::2])
    total = children[0].astype(np.uint16)
    for child in children[1:]:
        total += child
    a4 = total[..., 3]
    transparent = a4 == 0
    ys, xs = np.nonzero(~transparent & (a4 != 4 * 255))
    total += 2  # rounded mean, in place (the parents of a large image are tens of MB)
    total >>= 2
    out = total.astype(np.uint8)
    del total, a4
    out[transparent] = 0
    if ys.size:
        alpha = np.stack([c[ys, xs, 3] for c in children]).astype(np.uint32)  # (4, n)
        rgb = np.stack([c[ys, xs, :3] for c in children]).astype(np.uint32)  # (4, n, 3)
        num = (rgb * alpha[..., None]).sum(axis=0)
        den = alpha.sum(axis=0)[:, None]
        out[ys, xs, :3] = ((2 * num + den) // (2 * den)).astype(np.uint8)  # rounded
    return out


def _emit_band(band: np.ndarray, level: int, ty: int, x_tiles: range) -> Iterator[Tile]:
    for tx in x_tiles:
        tile = band[:, tx * TILE : (tx + 1) * TILE]
        if tile[..., 3].any():
            yield Tile(level, tx, ty, np.ascontiguousarray(tile))


def study_tiles(image: np.ndarray) -> Iterator[Tile]:
    """Yield every non-empty tile of the study pyramid of ``image``, top level first.

    Parameters
    ----------
    image
        ``(H, W, 3)`` or ``(H, W, 4)`` uint8, row 0 at the top. Without an alpha channel the
        image is opaque. A read-only memory map works: rows are read one band at a time.

    Yields
    ------
    Tile
        Level ``levels`` (the finest) first, then each coarser level down to 0.
    """
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3|4) uint8 image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    p2n, levels, x0, y0 = study_geometry(width, height)
    n = p2n // TILE
    below = np.zeros((p2n // 2, p2n // 2, 4), np.uint8) if levels > 0 else None
    band = np.zeros((TILE, p2n, 4), np.uint8)
    ty_first, ty_last = y0 // TILE, (y0 + height - 1) // TILE
    tx_range = range(x0 // TILE, (x0 + width - 1) // TILE + 1)
    for ty in range(ty_first, ty_last + 1):
        band.fill(0)
        top = ty * TILE
        r0, r1 = max(top, y0), min(top + TILE, y0 + height)
        rows = image[r0 - y0 : r1 - y0]
        band[r0 - top : r1 - top, x0 : x0 + width, :3] = rows[..., :3]
        if image.shape[2] == 4:
            band[r0 - top : r1 - top, x0 : x0 + width, 3] = rows[..., 3]
        else:
            band[r0 - top : r1 - top, x0 : x0 + width, 3] = 255
        yield from _emit_band(band, levels, ty, tx_range)
        if below is not None:
            below[ty * (TILE // 2) : (ty + 1) * (TILE // 2)] = _downsample(band)
    del band
    level = levels - 1
    while below is not None:
        n = below.shape[0] // TILE
        for ty in range(n):
            row = below[ty * TILE : (ty + 1) * TILE]
            if row[..., 3].any():
                yield from _emit_band(row, level, ty, range(n))
        below = _downsample(below) if level > 0 else None
        level -= 1


def thumbnail_box(width: int, height: int, aspect: float = 96 / 45) -> tuple[int, int, int, int]:
    """The centred crop box ``(left, top, right, bottom)`` with the thumbnail's aspect ratio."""
    if width / height > aspect:
        w = max(1, round(height * aspect))
        left = (width - w) // 2
        return left, 0, left + w, height
    h = max(1, round(width / aspect))
    top = (height - h) // 2
    return 0, top, width, top + h
