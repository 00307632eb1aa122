"""Sigma-clipped mean combination of frame stacks, numerically identical to

    astropy.stats.sigma_clip(cube, sigma=3, maxiters=3, cenfunc="median", stdfunc="mad_std",
                             axis=0).mean(axis=0)

but about an order of magnitude faster and in bounded memory: the caller feeds row chunks.

Algorithm per pixel (numba, parallel over pixels): sort the n values once (insertion sort: n is
tens); the kept values are always a contiguous window of the sorted values, so each iteration's
median is read off the window and its median absolute deviation found by merging the two sides'
deviations (two pointers, O(n)); clipping shrinks the window. As astropy does, iteration stops
when nothing more is clipped, when nothing is left, or after ``maxiters``; the final mask is
every value outside the last bounds. The mean is accumulated in float64. Non-finite values are
ignored (masked). A pixel with no value left is NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

MAD_TO_STD = 1.482602218505602  # 1 / Phi^-1(3/4), astropy's mad_std


@njit(cache=True, inline="always")
def _window_median(v: np.ndarray, lo: int, hi: int) -> float:
    n = hi - lo
    mid = lo + n // 2
    if n % 2:
        return v[mid]
    return 0.5 * (v[mid - 1] + v[mid])


@njit(cache=True)
def _window_mad(v: np.ndarray, lo: int, hi: int, med: float) -> float:
    """Median of |v[lo:hi] - med| for sorted v, by merging the two monotonic sides."""
    n = hi - lo
    # split: left side indices < split are <= med (deviation med - v, decreasing with index)
    split = lo
    while split < hi and v[split] <= med:
        split += 1
    i = split - 1  # walks left
    j = split  # walks right
    k_lo = (n - 1) // 2
    k_hi = n // 2
    prev = 0.0
    a = 0.0
    for k in range(k_hi + 1):
        if i >= lo and (j >= hi or med - v[i] <= v[j] - med):
            d = med - v[i]
            i -= 1
        else:
            d = v[j] - med
            j += 1
        if k == k_lo:
            prev = d
        a = d
    return 0.5 * (prev + a) if n % 2 == 0 else a


@njit(cache=True)
def _clip_pixel(v: np.ndarray, n: int, sigma: float, maxiters: int) -> tuple[float, int]:
    """Mean and count of the kept values of v[:n] (v is sorted in place)."""
    for a in range(1, n):  # insertion sort
        x = v[a]
        b = a - 1
        while b >= 0 and v[b] > x:
            v[b + 1] = v[b]
            b -= 1
        v[b + 1] = x
    if n == 0:
        return np.nan, 0
    lo, hi = 0, n
    blo = -np.inf
    bhi = np.inf
    it = 0
    while True:
        med = _window_median(v, lo, hi)
        std = _window_mad(v, lo, hi, med) * MAD_TO_STD
        blo = med - sigma * std
        bhi = med + sigma * std
        nlo, nhi = lo, hi
        while nlo < nhi and v[nlo] < blo:
            nlo += 1
        while nhi > nlo and v[nhi - 1] > bhi:
            nhi -= 1
        it += 1
        if (nhi - nlo) == (hi - lo) or nhi == nlo or it >= maxiters:
            break
        lo, hi = nlo, nhi
    # final mask: every value outside the last bounds
    total = 0.0
    count = 0
    for a in range(n):
        if blo <= v[a] <= bhi:
            total += v[a]
            count += 1
    if count == 0:
        return np.nan, 0
    return total / count, count


@njit(parallel=True, cache=True, nogil=True)
def _clipped_mean_chunk(
    cube: np.ndarray, sigma: float, maxiters: int, out: np.ndarray, counts: np.ndarray
) -> None:
    nframes, rows, cols = cube.shape
    for r in prange(rows):
        buf = np.empty(nframes, np.float64)
        for c in range(cols):
            n = 0
            for f in range(nframes):
                x = cube[f, r, c]
                if np.isfinite(x):
                    buf[n] = x
                    n += 1
            m, k = _clip_pixel(buf, n, sigma, maxiters)
            out[r, c] = m
            counts[r, c] = k


def clipped_mean(
    cube: np.ndarray, sigma: float = 3.0, maxiters: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Sigma-clipped mean along axis 0 of an ``(n, rows, cols)`` stack.

    Returns
    -------
    mean, count
        float64 mean of the kept values (NaN where none), and how many values were kept.
    """
    if cube.ndim != 3:
        raise ValueError(f"expected an (n, rows, cols) stack, got shape {cube.shape}")
    out = np.empty(cube.shape[1:], np.float64)
    counts = np.empty(cube.shape[1:], np.int32)
    _clipped_mean_chunk(np.ascontiguousarray(cube), float(sigma), int(maxiters), out, counts)
    return out, counts


def row_chunks(
    rows: int, nframes: int, cols: int, budget_bytes: int = 256 * 2**20
) -> list[tuple[int, int]]:
    """Row ranges so that one chunk of the stack (float32) stays within ``budget_bytes``."""
    per_row = max(1, nframes * cols * 4)
    step = max(1, budget_bytes // per_row)
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]
