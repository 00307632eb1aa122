"""Calibration maths of the cascade: frame corrections, reduction with variance and mask, and
QC metrics. numpy/astropy, and one numba kernel for the reduction (as the combine has one);
arrays in ADU or electrons (float32 in, float64 where precision matters).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from astropy.stats import mad_std, sigma_clipped_stats
from numba import njit, prange

from astroflow.models.errors import CalibrationError

MASK_BAD = 1  # flat <= 0.5, non-finite calibration
MASK_SATURATED = 2  # raw value at or above saturation
MASK_NONFINITE = 4  # raw value NaN/inf
# (8: cosmic ray, processing.cosmics)
MASK_BAD_PIXEL = 16  # the instrument's bad-pixel mask (hot, dead, bad columns)

#: Pixels a QC statistic or a flat's level is measured on (at most): a regular grid over the
#: whole frame, as IRAF's ``imstatistics`` and ``zscale`` sample. A median of 2**18 pixels
#: lies within ~0.25 % of a pixel's noise of the whole frame's; every pixel costs ~30 ms
#: per statistic on a 2048x2048 frame.
SAMPLE_PIXELS = 2**18


def grid_step(shape: tuple[int, ...], pixels: int = SAMPLE_PIXELS) -> int:
    """The step (in rows and in columns) of the regular grid of at most ~``pixels`` pixels
    that :func:`sampled` takes of a frame of ``shape``."""
    size = math.prod(shape)
    return max(1, math.ceil(math.sqrt(size / pixels)))


def sampled(image: np.ndarray, pixels: int = SAMPLE_PIXELS) -> np.ndarray:
    """The finite values of a regular grid over ``image`` (every ``k``-th row and column,
    ``k`` from :func:`grid_step`): the whole frame, every region and column alike, in ~``pixels``
    values (all of them for a small frame)."""
    k = grid_step(image.shape, pixels)
    values = np.asarray(image[::k, ::k], np.float64).ravel()
    return values[np.isfinite(values)]


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


def _mad_std(values: np.ndarray) -> float:
    return float(mad_std(values)) if values.size else float("nan")


def dark_rate(raw: np.ndarray, bias: np.ndarray, exptime: float) -> np.ndarray:
    """Dark current in ADU/s of one dark frame: (raw - master bias) / exptime."""
    if not exptime > 0:
        raise CalibrationError(f"dark exposure time {exptime} s is not positive")
    return ((raw.astype(np.float64) - bias) / exptime).astype(np.float32)


def flat_normalised(
    raw: np.ndarray, bias: np.ndarray, dark: np.ndarray, exptime: float
) -> np.ndarray:
    """One flat, bias- and dark-corrected, divided by its median (dimensionless, ~1).

    Float64 arithmetic per pixel, as numpy's float64 arrays would give (ccdproc's numbers);
    the median is exact (the flats of a set are scaled before a clipped combine, whose
    clipping decisions depend on every scale's last digits), taken in place on the corrected
    pixels without a second copy.
    """
    if not (raw.shape == bias.shape == dark.shape):
        raise CalibrationError(
            f"shapes differ: flat {raw.shape}, bias {bias.shape}, dark {dark.shape}"
        )
    raw, bias, dark = (np.ascontiguousarray(a) for a in (raw, bias, dark))
    corrected = np.empty(raw.shape, np.float64)
    _corrected_kernel(raw, bias, dark, float(exptime), corrected)
    values = corrected.reshape(-1)
    if np.isfinite(values).all():
        middle = values.size // 2
        values.partition([middle - 1, middle] if values.size % 2 == 0 else [middle])
        level = float(
            np.mean(values[middle - 1 : middle + 1]) if values.size % 2 == 0 else values[middle]
        )
    else:
        level = float(np.nanmedian(values))
    del corrected, values
    if not level > 0:
        raise CalibrationError(f"flat level {level:.3g} ADU after corrections is not positive")
    out = np.empty(raw.shape, np.float32)
    _flat_kernel(raw, bias, dark, float(exptime), level, out)
    return out


@njit(parallel=True, cache=True, nogil=True)
def _corrected_kernel(raw, bias, dark, exptime, out):  # type: ignore[no-untyped-def]
    # raw - bias - dark * exptime in float64 per pixel, as numpy's float64 arrays
    rows, cols = raw.shape
    for y in prange(rows):
        for x in range(cols):
            out[y, x] = np.float64(raw[y, x]) - bias[y, x] - dark[y, x] * exptime


@njit(parallel=True, cache=True, nogil=True)
def _flat_kernel(raw, bias, dark, exptime, level, out):  # type: ignore[no-untyped-def]
    # (raw - bias - dark * exptime) / level in float64 per pixel, as numpy's float64 arrays
    rows, cols = raw.shape
    for y in prange(rows):
        for x in range(cols):
            out[y, x] = (np.float64(raw[y, x]) - bias[y, x] - dark[y, x] * exptime) / level


def reduce_frame(
    raw: np.ndarray,
    bias: np.ndarray,
    dark: np.ndarray,
    flat: np.ndarray,
    exptime: float,
    gain: float,
    read_noise: float,
    saturation: float = 65000.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reduce a science frame: ``(raw - bias - dark * exptime) / flat``.

    Parameters
    ----------
    gain
        e-/ADU, for the Poisson part of the variance (1 for a frame already in electrons).
    read_noise
        In the frame's unit (ADU, or e- for a frame in electrons).

    Returns
    -------
    science, variance, mask
        float32 science, float32 variance (``(max(s, 0) / gain + RON^2) / flat^2``; NaN where
        the signal is NaN), and a uint8 bit mask: 1 bad calibration (flat <= 0.5 or
        non-finite), 2 saturated, 4 non-finite raw.

    One pass over the pixels (numba, in parallel rows, float64 arithmetic per pixel as
    numpy's float64 arrays would give, stored as float32): the arithmetic of
    numpy arrays (the reference in ``tests/processing/test_calibration.py``), about ten
    times faster and without their temporaries.
    """
    if not gain > 0:
        raise CalibrationError(f"gain {gain} e-/ADU is not positive")
    shape = raw.shape
    if not (bias.shape == dark.shape == flat.shape == shape):
        raise CalibrationError(
            f"shapes differ: raw {shape}, bias {bias.shape}, dark {dark.shape}, flat {flat.shape}"
        )
    science = np.empty(shape, np.float32)
    variance = np.empty(shape, np.float32)
    mask = np.empty(shape, np.uint8)
    _reduce_kernel(
        np.ascontiguousarray(raw),
        np.ascontiguousarray(bias),  # float32 or float64: each pixel is taken as float64
        np.ascontiguousarray(dark),
        np.ascontiguousarray(flat),
        float(exptime),
        float(gain),
        float(read_noise) ** 2,
        float(saturation),
        science,
        variance,
        mask,
    )
    return science, variance, mask


def reduce_regions(
    raw: np.ndarray,
    bias: np.ndarray,
    dark: np.ndarray,
    flat: np.ndarray,
    exptime: float,
    gain: float,
    regions: Sequence[tuple[tuple[slice, slice], float]],
    saturation: float = 65000.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`reduce_frame` of an image whose parts (the outputs of several amplifiers) have
    their own read noise: ``regions`` are ``((rows, columns), read noise)``, together
    covering the image."""
    science = np.empty(raw.shape, np.float32)
    variance = np.empty(raw.shape, np.float32)
    mask = np.zeros(raw.shape, np.uint8)
    for (rows, columns), noise in regions:
        part = (rows, columns)
        s, v, m = reduce_frame(
            raw[part], bias[part], dark[part], flat[part], exptime, gain, noise, saturation
        )
        science[part], variance[part], mask[part] = s, v, m
    return science, variance, mask


@njit(parallel=True, cache=True, nogil=True)
def _reduce_kernel(raw, bias, dark, flat, exptime, gain, rn2, saturation, science, variance, mask):  # type: ignore[no-untyped-def]
    rows, cols = raw.shape
    for y in prange(rows):
        for x in range(cols):
            r = np.float64(raw[y, x])
            b = bias[y, x]
            d = dark[y, x]
            f = flat[y, x]
            bad = not (np.isfinite(f) and f > 0.5 and np.isfinite(b) and np.isfinite(d))
            sf = 1.0 if bad else f
            s = r - b - d * exptime
            positive = s if not s < 0.0 else 0.0  # NaN stays NaN, as np.clip keeps it
            science[y, x] = s / sf
            variance[y, x] = (positive / gain + rn2) / (sf * sf)
            m = 0
            if bad:
                m |= MASK_BAD
            if r >= saturation:
                m |= MASK_SATURATED
            if not np.isfinite(r):
                m |= MASK_NONFINITE
            mask[y, x] = m


def read_noise_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Read noise (ADU) by the difference method: clipped std of (a - b) / sqrt(2)."""
    diff = a.astype(np.float64) - b
    _, _, std = sigma_clipped_stats(diff, sigma=3.0, maxiters=5)
    return float(std) / math.sqrt(2.0)


def qc_bias(
    master: np.ndarray, raw_a: np.ndarray | None, raw_b: np.ndarray | None
) -> dict[str, float]:
    """QC of a master bias: median (ADU), noise (ADU, MAD std), RON (ADU, difference method
    of two of its frames, ``raw_a`` and ``raw_b``); on the :func:`sampled` grid."""
    values = sampled(master)
    out = {"median": _median(values), "noise": _mad_std(values)}
    if raw_a is not None and raw_b is not None:
        k = grid_step(raw_a.shape)
        out["ron"] = read_noise_difference(raw_a[::k, ::k], raw_b[::k, ::k])
    return out


def qc_dark(master: np.ndarray) -> dict[str, float]:
    """QC of a master dark (ADU/s): median and noise (on the :func:`sampled` grid), hot pixel
    fraction (> median + 5 noise, of every pixel)."""
    values = sampled(master)
    med, noise = _median(values), _mad_std(values)
    hot = float(np.count_nonzero(master > med + 5 * max(noise, 1e-12)) / master.size)
    return {"median": med, "noise": noise, "hot_fraction": hot}


def qc_flat(master: np.ndarray) -> dict[str, float]:
    """QC of a normalised master flat: mean, noise (MAD std on the :func:`sampled` grid), cold
    (< 0.5) and bad (non-finite) fractions of every pixel."""
    finite = np.isfinite(master)
    good = int(np.count_nonzero(finite))
    return {
        "mean": float(np.nanmean(master)),
        "noise": _mad_std(sampled(master)),
        "cold_fraction": float(np.count_nonzero(master < 0.5) / master.size),
        "bad_fraction": float((master.size - good) / master.size),
    }


def qc_science(science: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """QC of a reduced frame: sky median (its unit; the unmasked pixels of the
    :func:`sampled` grid) and masked fraction (of every pixel)."""
    k = grid_step(science.shape)
    values = science[::k, ::k][mask[::k, ::k] == 0].astype(np.float64)
    return {
        "sky_median": _median(values[np.isfinite(values)]),
        "masked_fraction": float(np.count_nonzero(mask) / mask.size),
    }


def within(value: float | None, bounds: tuple[float, float] | None) -> bool:
    """The one QC judgement: ``lo <= value <= hi`` (inclusive); no range passes anything, a
    missing or NaN value fails a range."""
    if bounds is None:
        return True
    return value is not None and bounds[0] <= value <= bounds[1]


def metric_name(qc_name: str) -> str:
    """The metric a QC value measures: ``median`` for ``median`` and for the per-extension
    ``median[SCI,2]`` of a multi-extension product (one range judges every extension)."""
    return qc_name.split("[", 1)[0]


def qc_failures(
    values: Mapping[str, float], ranges: Mapping[str, tuple[float, float]]
) -> list[str]:
    """Names and reasons of QC values outside their acceptable range.

    Bounds are inclusive: ``lo <= value <= hi`` passes (a value exactly on a bound passes).
    A NaN value fails. A range for a value the recipe did not compute is ignored; a
    per-extension value (``median[SCI,2]``) is judged by its metric's range.
    """
    bad = []
    for name, value in values.items():
        bounds = ranges.get(metric_name(name))
        if bounds is not None and not within(value, bounds):
            bad.append(f"{name}={value:.6g} outside [{bounds[0]:g}, {bounds[1]:g}]")
    return bad
