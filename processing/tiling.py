"""Sparse WWT study pyramids from an image array.

The image (``H x W x C`` uint8, row 0 at the top; C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA)
is centred in a square of side
``p2n`` (see :func:`processing.wcs.study_geometry`). Top-level tiles are cut straight from the
image, one band of tile rows at a time, so memory stays near the image itself plus a
half-resolution canvas for the next level. Parents are the alpha-weighted mean of each 2x2
block of children: colour = sum(rgb * a) / sum(a), alpha = sum(a) / 4, both rounded to nearest.
For opaque pixels that is the plain 2x2 mean; transparent padding never darkens edges (toasty
averages padding in as zeros). Tiles whose alpha is zero everywhere are not emitted (sparse).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from astroflow.processing.wcs import TILE, study_geometry


@dataclass(frozen=True, slots=True)
class Tile:
    """One 256x256 tile: level (0 = top of the pyramid), column x, row y (0-based), and its
    pixels, ``(256, 256, 2)`` grey + alpha or ``(256, 256, 4)`` RGBA uint8 (alpha last)."""

    level: int
    x: int
    y: int
    pixels: np.ndarray

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


def plain_mean_2x2(block: np.ndarray) -> np.ndarray:
    """Rounded mean of every channel over each 2x2 block: (2h, 2w, C) uint8 -> (h, w, C)."""
    children = (block[0::2, 0::2], block[0::2, 1::2], block[1::2, 0::2], block[1::2, 1::2])
    total = children[0].astype(np.uint16)
    for child in children[1:]:
        total += child
    total += 2  # rounded, in place (the parents of a large image are tens of MB)
    total >>= 2
    return total.astype(np.uint8)


def weight_by_alpha(block: np.ndarray, plain: np.ndarray, *, binary: bool = False) -> np.ndarray:
    """Turn the plain 2x2 means of ``block`` (alpha last) into the alpha-weighted ones.

    Where a block's four alphas are equal the plain mean is already the weighted one (fully
    transparent blocks become 0); only blocks mixing alpha values (image edges, masks) are
    recomputed: colour = sum(c * a) / sum(a), rounded. ``plain`` is changed in place.

    With ``binary`` the caller promises that every alpha is 0 or 255 and every transparent
    pixel's colour 0: a block is then mixed exactly when its mean alpha is neither 0 nor
    255, which is found on the means alone (a quarter of the pixels, 4x less work).
    """
    if binary:
        mean_alpha = plain[..., -1]
        ys, xs = np.nonzero((mean_alpha != 0) & (mean_alpha != 255))
    else:
        alpha = block[..., -1]
        quads = (alpha[0::2, 0::2], alpha[0::2, 1::2], alpha[1::2, 0::2], alpha[1::2, 1::2])
        lo = np.minimum(np.minimum(quads[0], quads[1]), np.minimum(quads[2], quads[3]))
        hi = np.maximum(np.maximum(quads[0], quads[1]), np.maximum(quads[2], quads[3]))
        plain[hi == 0] = 0
        ys, xs = np.nonzero(lo != hi)
    if ys.size:
        children = (block[0::2, 0::2], block[0::2, 1::2], block[1::2, 0::2], block[1::2, 1::2])
        weights = np.stack([c[ys, xs, -1] for c in children]).astype(np.uint32)  # (4, n)
        colour = np.stack([c[ys, xs, :-1] for c in children]).astype(np.uint32)  # (4, n, C-1)
        num = (colour * weights[..., None]).sum(axis=0)
        den = weights.sum(axis=0)[:, None]
        plain[ys, xs, :-1] = ((2 * num + den) // (2 * den)).astype(np.uint8)  # rounded
    return plain


def mean_2x2(block: np.ndarray) -> np.ndarray:
    """Alpha-weighted 2x2 mean of a (2h, 2w, C) uint8 array (alpha last) -> (h, w, C) uint8:
    colour = sum(c * a) / sum(a), alpha = sum(a) / 4, both rounded to nearest."""
    return weight_by_alpha(block, plain_mean_2x2(block))


# Each pixel (alpha last) read as one little-endian unsigned integer: alpha is its top byte,
# so some pixel is visible exactly when the largest integer reaches the floor. One max over
# contiguous pixels is ~5x faster than ``any()`` of the strided alpha bytes.
_PIXEL_AS_INT = {2: ("<u2", 1 << 8), 4: ("<u4", 1 << 24)}


def any_visible(pixels: np.ndarray) -> bool:
    """Whether some pixel of an ``(..., C)`` uint8 array (alpha last when C is 2 or 4) has a
    non-zero alpha; always True without alpha (C = 1, 3: opaque). The last axis must be
    contiguous, as it is in the tiler's bands and canvases."""
    as_int = _PIXEL_AS_INT.get(pixels.shape[-1])
    if as_int is None:
        return pixels.size > 0
    dtype, floor = as_int
    return bool(pixels.view(dtype).max(initial=0) >= floor)


def _emit_band(
    band: np.ndarray, level: int, ty: int, x_tiles: range, *, check: bool = True
) -> Iterator[Tile]:
    """The tiles of a band of tile rows; with ``check``, only those with a visible pixel
    (without: the caller knows each one covers part of an opaque image)."""
    for tx in x_tiles:
        tile = band[:, tx * TILE : (tx + 1) * TILE]
        if not check or any_visible(tile):
            yield Tile(level, tx, ty, np.ascontiguousarray(tile))


def study_tiles(
    image: np.ndarray, *, plain_mean: Callable[[np.ndarray], np.ndarray] = plain_mean_2x2
) -> Iterator[Tile]:
    """Yield every non-empty tile of the study pyramid of ``image``, top level first.

    Parameters
    ----------
    image
        ``(H, W, C)`` uint8, row 0 at the top: C = 1 (grey), 2 (grey, alpha), 3 (RGB) or 4
        (RGBA). Without an alpha channel the image is opaque. A read-only memory map works:
        rows are read one band at a time.
    plain_mean
        The rounded plain 2x2 mean (:func:`plain_mean_2x2`, or a faster one giving the same
        numbers: ``storage.images.box_reduce_2x2``); the alpha weighting is applied here.

    Yields
    ------
    Tile
        Level ``levels`` (the finest) first, then each coarser level down to 0; grey images
        give grey + alpha tiles, colour ones RGBA tiles.
    """
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 1-4) uint8 image, got {image.shape} {image.dtype}")
    height, width, channels = image.shape
    colours = 1 if channels <= 2 else 3
    # What the image says of its alpha (array-likes may carry these attributes): every
    # pixel opaque (an RGB picture's RGBA bands), or 0/255 with black transparent pixels (a
    # rendered FITS). Either makes edges and empty tiles cheaper to find.
    opaque = channels == colours or bool(getattr(image, "opaque", False))
    binary = opaque or bool(getattr(image, "binary_alpha", False))
    p2n, levels, x0, y0 = study_geometry(width, height)
    n = p2n // TILE
    below = np.zeros((p2n // 2, p2n // 2, colours + 1), np.uint8) if levels > 0 else None
    band = np.zeros((TILE, p2n, colours + 1), np.uint8)
    ty_first, ty_last = y0 // TILE, (y0 + height - 1) // TILE
    tx_range = range(x0 // TILE, (x0 + width - 1) // TILE + 1)
    for ty in range(ty_first, ty_last + 1):
        band.fill(0)
        top = ty * TILE
        r0, r1 = max(top, y0), min(top + TILE, y0 + height)
        rows = image[r0 - y0 : r1 - y0]
        if channels == colours + 1:  # with alpha: one copy
            band[r0 - top : r1 - top, x0 : x0 + width] = rows
        else:
            band[r0 - top : r1 - top, x0 : x0 + width, :colours] = rows
            band[r0 - top : r1 - top, x0 : x0 + width, colours] = 255
        yield from _emit_band(band, levels, ty, tx_range, check=not opaque)
        if below is not None:
            below[ty * (TILE // 2) : (ty + 1) * (TILE // 2)] = weight_by_alpha(
                band, plain_mean(band), binary=binary
            )
    del band
    level = levels - 1
    while below is not None:
        n = below.shape[0] // TILE
        for ty in range(n):
            row = below[ty * TILE : (ty + 1) * TILE]
            if any_visible(row):
                yield from _emit_band(row, level, ty, range(n))
        below = weight_by_alpha(below, plain_mean(below)) if level > 0 else None
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
