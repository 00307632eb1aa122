"""L.A.Cosmic (van Dokkum 2001) as astroscrappy's ``detect_cosmics`` computes it (the same
mask and the same cleaned values, bit for bit, for ``fsmode='median'``,
``cleantype='meanmask'``), without its repeated whole-frame work.

* **Later iterations only where they can differ.** astroscrappy repeats its whole-frame
  detection ``niter`` times (4 by default, ccdproc's too), yet a pixel's detection depends
  only on the cleaned frame within :data:`REACH` pixels of it (the Laplacian 1, the noise
  model's 7x7 median 3, the median of the Laplacian-to-noise image 3 more, the
  fine-structure medians 2 + 4, two 3x3 dilations 1 + 1), and an iteration changes only the
  pixels it cleans. So iteration ``k + 1`` is computed in rectangles around the pixels
  iteration ``k`` changed (each with a :data:`MARGIN` where the kernels' edge handling shows,
  thrown away) and copied from iteration ``k`` everywhere else; on the whole frame when the
  rectangles would cover most of it.
* **The fine-structure image only at the candidates** (pixels above ``sigclip``), the only
  place it decides anything (astroscrappy's own TODO).
* **Two kernels in numba** where astroscrappy's C is slow on few cores: the Laplacian of the
  2x-subsampled frame without the subsampled arrays, and the 7x7 separable median (a median
  of finite values is one of them, whatever computes it). The Laplacian's sums follow the
  order the astroscrappy 1.3 wheels' compiler chose (-ffast-math), checked against the
  installed astroscrappy at first use; astroscrappy's own functions otherwise, and for
  everything else (the 5x5 and 9x9 medians, dilations, medians of the frame).

The arithmetic is astroscrappy 1.3's step for step, down to its single-precision parameters
(its signature takes C floats). ``tests/processing/test_lacosmic.py`` compares the two
on seeded frames (sparse and dense hits, saturated stars, hits on the edges, gain, 1 to 8
iterations, full medians) and on real ones (Gemini GMOS, SAAO 1.0 m).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from numba import njit

#: How far (pixels, in x and y) a change of the cleaned frame reaches into the detection.
REACH = 8
#: Pixels computed and thrown away around each recomputed rectangle (at least :data:`REACH`:
#: where the kernels' edge handling shows).
MARGIN = REACH + 2
#: Side of the blocks (pixels) whose detection is recomputed or kept as a whole.
BLOCK = 8
#: Share of the frame above which an iteration is computed on the whole frame.
FULL = 0.7


def _f32(value: float) -> float:
    """``value`` as astroscrappy sees it (a C ``float`` parameter)."""
    return float(np.float32(value))


_F4 = np.float32(4.0)
_ZERO = np.float32(0.0)


@njit(cache=True, nogil=True)
def _laplacian_kernel(x, out):  # type: ignore[no-untyped-def]
    # rebin(clip(laplaceconvolve(subsample(x)))) for the pixels 1 or more from the edge,
    # without the 2x-subsampled arrays: the four sub-pixels' Laplacians and their sum in
    # the order of the astroscrappy 1.3 wheels' code (built with -O3 -ffast-math, which
    # reorders ``4c - right - left - below - above`` and the 2x2 sum); checked against it
    # at first use (:func:`_laplacian_matches`)
    ny, nx = x.shape
    for j in range(1, ny - 1):
        for i in range(1, nx - 1):
            c = x[j, i]
            c4 = _F4 * c
            left = c4 - c - x[j, i - 1]  # 4c - right - left of the two left sub-pixels
            right = c4 - x[j, i + 1] - c
            above = c + x[j - 1, i]  # below + above of the two upper sub-pixels
            below = x[j + 1, i] + c
            p00 = left - above
            p01 = right - above
            p10 = left - below
            p11 = right - below
            p00 = _ZERO if p00 < _ZERO else p00
            p01 = _ZERO if p01 < _ZERO else p01
            p10 = _ZERO if p10 < _ZERO else p10
            p11 = _ZERO if p11 < _ZERO else p11
            out[j, i] = ((p00 + p11) + (p10 + p01)) / _F4


def _laplacian_reference(cleanarr: np.ndarray) -> np.ndarray:
    """astroscrappy's own ``rebin(clip(laplaceconvolve(subsample(cleanarr))))``."""
    from astroscrappy import utils as u

    conved = u.laplaceconvolve(u.subsample(np.ascontiguousarray(cleanarr)))
    conved[conved < 0] = 0.0
    return u.rebin(conved)


@cache
def _laplacian_matches() -> bool:
    """Whether :func:`_laplacian_kernel` gives this astroscrappy build's numbers, bit for
    bit, on a seeded test frame (another compiler may order the sums differently: then
    astroscrappy's own functions are used)."""
    rng = np.random.default_rng(13)
    x = (rng.normal(0, 1, (67, 71)) * 10.0 ** rng.integers(-3, 6, (67, 71))).astype(np.float32)
    out = np.empty_like(x)
    _laplacian_kernel(x, out)
    return bool(np.array_equal(out[1:-1, 1:-1], _laplacian_reference(x)[1:-1, 1:-1]))


def _laplacian(
    cleanarr: np.ndarray, edges: tuple[bool, bool, bool, bool] = (True, True, True, True)
) -> np.ndarray:
    """astroscrappy's ``rebin(clip(laplaceconvolve(subsample(cleanarr))))`` (the Laplacian
    of the 2x-subsampled frame, negative values 0, binned back), bit for bit: the kernel
    above inside, astroscrappy's own functions on 3-pixel strips along the ``edges`` that are
    the frame's own (top, bottom, left, right: its edge formulas differ); 0 along the others
    (a window's margin, thrown away)."""
    ny, nx = cleanarr.shape
    if ny < 4 or nx < 4 or not _laplacian_matches():
        return _laplacian_reference(cleanarr)
    out = np.empty_like(cleanarr)
    _laplacian_kernel(cleanarr, out)
    top, bottom, left, right = edges
    out[:1, :] = _laplacian_reference(cleanarr[:3, :])[:1, :] if top else 0.0
    out[-1:, :] = _laplacian_reference(cleanarr[-3:, :])[-1:, :] if bottom else 0.0
    out[1:-1, :1] = _laplacian_reference(cleanarr[:, :3])[1:-1, :1] if left else 0.0
    out[1:-1, -1:] = _laplacian_reference(cleanarr[:, -3:])[1:-1, -1:] if right else 0.0
    return out


@njit(cache=True, nogil=True, inline="always")
def _median7(p0, p1, p2, p3, p4, p5, p6):  # type: ignore[no-untyped-def]
    # astroscrappy's PyOptMed7 network (13 compare-exchanges), branch-free
    p0, p5 = min(p0, p5), max(p0, p5)
    p0, p3 = min(p0, p3), max(p0, p3)
    p1, p6 = min(p1, p6), max(p1, p6)
    p2, p4 = min(p2, p4), max(p2, p4)
    p0, p1 = min(p0, p1), max(p0, p1)
    p3, p5 = min(p3, p5), max(p3, p5)
    p2, p6 = min(p2, p6), max(p2, p6)
    p2, p3 = min(p2, p3), max(p2, p3)
    p3, p6 = min(p3, p6), max(p3, p6)
    p4, p5 = min(p4, p5), max(p4, p5)
    p1, p4 = min(p1, p4), max(p1, p4)
    p1, p3 = min(p1, p3), max(p1, p3)
    p3, p4 = min(p3, p4), max(p3, p4)
    return p3


@njit(cache=True, nogil=True)
def _sepmed7_kernel(x, out):  # type: ignore[no-untyped-def]
    # astroscrappy's sepmedfilt7: the median of 7 row medians of 7; the input within 3 of
    # an edge (a median of finite values is one of them, whatever the algorithm)
    ny, nx = x.shape
    rows = np.empty_like(x)
    for j in range(ny):
        for i in range(3, nx - 3):
            rows[j, i] = _median7(
                x[j, i - 3],
                x[j, i - 2],
                x[j, i - 1],
                x[j, i],
                x[j, i + 1],
                x[j, i + 2],
                x[j, i + 3],
            )
    out[:, :] = x
    for j in range(3, ny - 3):
        for i in range(3, nx - 3):
            out[j, i] = _median7(
                rows[j - 3, i],
                rows[j - 2, i],
                rows[j - 1, i],
                rows[j, i],
                rows[j + 1, i],
                rows[j + 2, i],
                rows[j + 3, i],
            )


def _sepmedfilt7(x: np.ndarray) -> np.ndarray:
    """astroscrappy's ``sepmedfilt7(x)``, the same numbers (a vectorised kernel, ~5x
    faster than its OpenMP one on two cores); astroscrappy's own for non-finite values."""
    from astroscrappy import utils as u

    if not np.isfinite(x).all():
        return u.sepmedfilt7(x)
    out = np.empty_like(x)
    _sepmed7_kernel(x, out)
    return out


@njit(cache=True, nogil=True, inline="always")
def _median(values):  # type: ignore[no-untyped-def]
    # the middle one of an odd number of finite values (insertion sort, in place)
    n = values.size
    for a in range(1, n):
        v = values[a]
        b = a - 1
        while b >= 0 and values[b] > v:
            values[b + 1] = values[b]
            b -= 1
        values[b + 1] = v
    return values[n // 2]


@njit(cache=True, nogil=True)
def _sepmed_at(x, y, i, h, buf, rows):  # type: ignore[no-untyped-def]
    # astroscrappy's separable median (half width h) of x at [y, i]: the median of the 2h+1
    # row medians around it; the input itself within h of an edge
    ny, nx = x.shape
    if y < h or y >= ny - h or i < h or i >= nx - h:
        return x[y, i]
    for dy in range(2 * h + 1):
        for dx in range(2 * h + 1):
            buf[dx] = x[y - h + dy, i - h + dx]
        rows[dy] = _median(buf)
    return _median(rows)


@njit(cache=True, nogil=True)
def _fine_structure_kernel(x, ys, xs, out):  # type: ignore[no-untyped-def]
    # sepmedfilt5(x) - sepmedfilt9(sepmedfilt5(x)) at the pixels (ys, xs) only: the 9x9
    # separable median of the 5x5 one, each 5x5 value computed where it is needed
    ny, nx = x.shape
    b5 = np.empty(5, np.float32)
    r5 = np.empty(5, np.float32)
    b9 = np.empty(9, np.float32)
    r9 = np.empty(9, np.float32)
    for n in range(ys.size):
        y, i = ys[n], xs[n]
        f5 = _sepmed_at(x, y, i, 2, b5, r5)
        if y < 4 or y >= ny - 4 or i < 4 or i >= nx - 4:
            m9 = f5
        else:
            for dy in range(9):
                for dx in range(9):
                    b9[dx] = _sepmed_at(x, y - 4 + dy, i - 4 + dx, 2, b5, r5)
                r9[dy] = _median(b9)
            m9 = _median(r9)
        out[n] = f5 - m9


@dataclass(frozen=True)
class _Params:
    sigclip: float
    sigcliplow: float
    objlim: float
    sepmed: bool


def _detect(
    cleanarr: np.ndarray,
    clean_var: np.ndarray,
    goodpix: np.ndarray,
    p: _Params,
    edges: tuple[bool, bool, bool, bool] = (True, True, True, True),
) -> np.ndarray:
    """One iteration's detection (bool ``[y, x]``) of a C-contiguous float32 frame (or a
    window of it: ``edges`` says which of its sides are the frame's) and its variance:
    astroscrappy's loop body up to ``numcr``."""
    from astroscrappy import utils as u

    s = _laplacian(cleanarr, edges)
    m5 = _sepmedfilt7(clean_var) if p.sepmed else u.medfilt5(clean_var)
    m5[m5 < 0.00001] = 0.00001
    noise = np.sqrt(m5)
    del m5
    s /= 2.0 * noise
    sp = _sepmedfilt7(s) if p.sepmed else u.medfilt5(s)
    sp = s - sp
    del s
    cosmics = np.logical_and(sp > p.sigclip, goodpix)
    if p.sepmed:
        # the fine-structure image only where it decides: at the candidates
        ys, xs = np.nonzero(cosmics)
        f = np.empty(ys.size, dtype=np.float32)
        _fine_structure_kernel(cleanarr, ys, xs, f)
        f = f / noise[ys, xs]
        f[f < 0.01] = 0.01
        cosmics[ys, xs] = (sp[ys, xs] / f) > p.objlim
    else:
        f = u.medfilt3(cleanarr)
        m7 = u.medfilt7(f)
        f = (f - m7) / noise
        f[f < 0.01] = 0.01
        del m7
        cosmics = np.logical_and(cosmics, (sp / f) > p.objlim)
    del f, noise
    cosmics = u.dilate3(cosmics)
    cosmics = np.logical_and(cosmics, goodpix)
    cosmics = np.logical_and(sp > p.sigclip, cosmics)
    cosmics = u.dilate3(cosmics)
    cosmics = np.logical_and(cosmics, goodpix)
    return np.logical_and(sp > p.sigcliplow, cosmics)


def _windows(
    changed_y: np.ndarray, changed_x: np.ndarray, shape: tuple[int, int]
) -> list[tuple[int, int, int, int]] | None:
    """Rectangles ``(y0, y1, x0, x1)`` that together hold every pixel within :data:`REACH`
    of a changed pixel: the bounding boxes of the connected groups of :data:`BLOCK`-pixel
    blocks such pixels touch. None when they would cover more than :data:`FULL` of the
    frame (the whole frame is cheaper then)."""
    from scipy import ndimage

    ny, nx = shape
    rows, cols = -(-ny // BLOCK), -(-nx // BLOCK)
    dirty = np.zeros((rows, cols), dtype=bool)
    steps = (*range(-REACH, REACH, BLOCK), REACH)  # every block within reach
    for dy in steps:
        by = np.clip((changed_y + dy) // BLOCK, 0, rows - 1)
        for dx in steps:
            bx = np.clip((changed_x + dx) // BLOCK, 0, cols - 1)
            dirty[by, bx] = True
    labels, _ = ndimage.label(dirty, structure=np.ones((3, 3), dtype=bool))
    boxes = [
        (
            sy.start * BLOCK,
            min(sy.stop * BLOCK, ny),
            sx.start * BLOCK,
            min(sx.stop * BLOCK, nx),
        )
        for sy, sx in ndimage.find_objects(labels)
    ]
    computed = sum(
        (min(y1 + MARGIN, ny) - max(y0 - MARGIN, 0)) * (min(x1 + MARGIN, nx) - max(x0 - MARGIN, 0))
        for y0, y1, x0, x1 in boxes
    )
    return None if computed > FULL * ny * nx else boxes


@njit(cache=True, nogil=True)
def _meanmask_kernel(arr, ys, xs, bad, values, counts):  # type: ignore[no-untyped-def]
    # the single-precision sum of the good 5x5 neighbours, row by row, and their mean
    for n in range(ys.size):
        y, x = ys[n], xs[n]
        total = _ZERO
        count = 0
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                if not bad[y + dy, x + dx]:
                    total = total + arr[y + dy, x + dx]
                    count += 1
        counts[n] = count
        values[n] = total / np.float32(count) if count else _ZERO


def _clean_meanmask(
    arr: np.ndarray, ys: np.ndarray, xs: np.ndarray, bad: np.ndarray, level: Callable[[], float]
) -> np.ndarray:
    """astroscrappy's ``clean_meanmask`` in place for the flagged pixels ``ys, xs`` (all of
    them 2 or more from the edge): each becomes the single-precision mean of its unflagged,
    unmasked (``bad`` False) 5x5 neighbours, summed row by row, or ``level()`` without any.
    Returns which of them it changed."""
    value = np.empty(ys.size, dtype=np.float32)
    count = np.empty(ys.size, dtype=np.int32)
    _meanmask_kernel(arr, ys, xs, bad, value, count)
    if not count.all():
        value[count == 0] = np.float32(level())
    moved = arr[ys, xs] != value
    arr[ys, xs] = value
    return moved


def detect_cosmics(
    indat: np.ndarray,
    inmask: np.ndarray | None = None,
    *,
    sigclip: float = 4.5,
    sigfrac: float = 0.3,
    objlim: float = 5.0,
    gain: float = 1.0,
    readnoise: float = 6.5,
    satlevel: float = 65536.0,
    niter: int = 4,
    sepmed: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``astroscrappy.detect_cosmics(indat, inmask, ..., cleantype='meanmask',
    fsmode='median')``: the cosmic-ray mask (bool ``[y, x]``) and the cleaned frame (float32,
    in the unit of ``indat``). A frame with NaN or infinite values goes to astroscrappy
    itself.

    Parameters
    ----------
    indat
        The frame, sky included, in counts (2-D).
    inmask
        Pixels to leave out (bool), or None.
    gain
        e-/count of ``indat``.
    readnoise
        In electrons.
    satlevel
        In electrons: stars at or above it are masked as saturated.
    """
    from astroscrappy import utils as u

    gain, readnoise, satlevel = _f32(gain), _f32(readnoise), _f32(satlevel)
    sigclip, sigfrac, objlim = _f32(sigclip), _f32(sigfrac), _f32(objlim)
    params = _Params(
        sigclip=sigclip,
        sigcliplow=float(np.float32(sigfrac) * np.float32(sigclip)),
        objlim=objlim,
        sepmed=sepmed,
    )
    ny, nx = indat.shape
    cleanarr = np.empty((ny, nx), dtype=np.float32, order="C")
    cleanarr[:, :] = indat[:, :] * gain
    if not np.isfinite(cleanarr).all():  # how its medians order NaN and inf is its own
        import astroscrappy

        return astroscrappy.detect_cosmics(
            indat,
            inmask=inmask,
            sigclip=sigclip,
            sigfrac=sigfrac,
            objlim=objlim,
            gain=gain,
            readnoise=readnoise,
            satlevel=satlevel,
            niter=niter,
            sepmed=sepmed,
            cleantype="meanmask",
            fsmode="median",
            verbose=False,
        )
    mask = np.zeros((ny, nx), dtype=np.uint8, order="C")
    if inmask is not None:
        mask[:, :] = inmask[:, :]
    rn2 = float(np.float32(readnoise) * np.float32(readnoise))
    clean_var = cleanarr + rn2
    # astroscrappy's update_mask: the input mask grown by one pixel, and the cores of
    # saturated stars (saturated where the 7x7 median is above a tenth of saturation)
    # grown by two
    satpixels = cleanarr >= satlevel
    grow_mask = u.dilate3(mask) if mask.any() else mask
    if satpixels.any():
        m5 = _sepmedfilt7(cleanarr) if sepmed else u.medfilt5(cleanarr)
        satpixels = np.logical_and(satpixels, m5 > (satlevel / 10.0))
        del m5
        mask[:, :] = np.logical_or(u.dilate5(satpixels, 2), grow_mask)[:, :]
    else:
        mask[:, :] = grow_mask
    goodpix = np.logical_not(mask)

    @cache
    def levels() -> tuple[float, float]:
        # the medians of the good pixels of the frame and of its variance before any
        # cleaning (only a flagged pixel without any good neighbour needs them)
        start = np.empty((ny, nx), dtype=np.float32)
        start[:, :] = indat[:, :] * gain
        gooddata = np.ascontiguousarray(start[goodpix])
        goodvar = np.ascontiguousarray((start + rn2)[goodpix])
        return u.median(gooddata, len(gooddata)), u.median(goodvar, len(goodvar))

    crmask = np.zeros((ny, nx), dtype=bool)
    cosmics: np.ndarray | None = None
    changed: tuple[np.ndarray, np.ndarray] | None = None
    for _ in range(niter):
        if cosmics is None:
            windows = None  # the first iteration: the whole frame
        elif changed[0].size:
            windows = _windows(*changed, (ny, nx))
        else:
            windows = []  # nothing changed: the same detection again
        if windows is None:
            cosmics = _detect(cleanarr, clean_var, goodpix, params)
        elif windows:  # the last detection, renewed where it can differ
            for y0, y1, x0, x1 in windows:
                wy0, wy1 = max(y0 - MARGIN, 0), min(y1 + MARGIN, ny)
                wx0, wx1 = max(x0 - MARGIN, 0), min(x1 + MARGIN, nx)
                window = (slice(wy0, wy1), slice(wx0, wx1))
                found = _detect(
                    np.ascontiguousarray(cleanarr[window]),
                    np.ascontiguousarray(clean_var[window]),
                    goodpix[window],
                    params,
                    (wy0 == 0, wy1 == ny, wx0 == 0, wx1 == nx),
                )
                cosmics[y0:y1, x0:x1] = found[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0]
        numcr = int(np.count_nonzero(cosmics))
        crmask |= cosmics
        if numcr == 0:
            break
        # clean every flagged pixel 2 or more from the edge, and note which ones changed
        ys, xs = np.nonzero(crmask[2 : ny - 2, 2 : nx - 2])
        ys += 2
        xs += 2
        bad = crmask | ~goodpix
        moved = _clean_meanmask(cleanarr, ys, xs, bad, lambda: levels()[0])
        moved |= _clean_meanmask(clean_var, ys, xs, bad, lambda: levels()[1])
        changed = ys[moved], xs[moved]
    cleanarr /= gain
    return crmask, cleanarr
