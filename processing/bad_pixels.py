"""The instrument's bad-pixel mask from its calibrations (the ``mbpm`` recipe's science).

Dead, hot and non-linear pixels and bad columns respond differently to two light levels, so
they stand out in the ratio of a bright flat to a faint one, where every good pixel is the
same number up to noise and a smooth illumination change. IRAF's ``ccdmask`` reads that
ratio (a moving median subtracted, deviations beyond a local percentile sigma);
``ccdproc.ccdmask`` is that task in Python and is what runs here. Hot pixels also show in a
master dark without any light: its outliers above the median are added.

The mask is ``uint8``: :data:`BPM_FLAT` for a pixel the flats' ratio flags, :data:`BPM_HOT`
for one the dark flags (both may be set); a reduced frame ORs any nonzero value into its
``MASK`` plane as bit 16.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from astroflow.models.errors import CalibrationError
from astroflow.models.rules import BadPixelMask

#: Values of the mask: flagged by the ratio of the two flat levels, by the master dark.
BPM_FLAT = 1
BPM_HOT = 2


def split_levels(
    levels: Sequence[float], min_ratio: float, name: str = ""
) -> tuple[list[int], list[int]]:
    """The indices of the low and the high flats: at most ``sqrt(lowest * highest)`` and
    above it.

    Raises
    ------
    CalibrationError
        When the levels are not all positive, or the highest is less than ``min_ratio`` times
        the lowest (naming the set ``name`` and the levels).
    """
    values = [float(v) for v in levels]
    if not values or min(values) <= 0 or not all(math.isfinite(v) for v in values):
        shown = ", ".join(f"{v:.4g}" for v in values)
        raise CalibrationError(f"{name}: flat levels must be positive (found {shown})")
    lo, hi = min(values), max(values)
    if hi < min_ratio * lo:
        raise CalibrationError(
            f"{name}: the flats span levels {lo:.4g} to {hi:.4g} (x{hi / lo:.3g}); a bad-pixel "
            f"mask needs flats of two levels at least x{min_ratio:g} apart (rules: "
            "bad_pixel_mask.min_level_ratio)"
        )
    cut = math.sqrt(lo * hi)
    low = [i for i, v in enumerate(values) if v <= cut]
    high = [i for i, v in enumerate(values) if v > cut]
    return low, high


def flat_corrected(
    raw: np.ndarray, bias: np.ndarray, dark: np.ndarray, exptime: float
) -> np.ndarray:
    """One flat with its bias and dark current (``dark`` per second times ``exptime``)
    taken off, float32, not normalised (its level tells which group it belongs to)."""
    if not (raw.shape == bias.shape == dark.shape):
        raise CalibrationError(
            f"shapes differ: flat {raw.shape}, bias {bias.shape}, dark {dark.shape}"
        )
    corrected = np.asarray(raw, np.float64) - bias - np.asarray(dark, np.float64) * exptime
    return corrected.astype(np.float32)


def flat_ratio(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """The ratio of the bright combined flat to the faint one (float64, ``[y, x]``); 0 where
    the faint flat has no positive signal (a dead pixel), so that the ratio stays finite
    and such a pixel deviates low."""
    high = np.asarray(high, np.float64)
    low = np.asarray(low, np.float64)
    ratio = np.zeros(high.shape, np.float64)
    good = np.isfinite(high) & np.isfinite(low) & (low > 0)
    np.divide(high, low, out=ratio, where=good)
    return ratio


def ratio_mask(ratio: np.ndarray, options: BadPixelMask) -> np.ndarray:
    """The pixels (bool, True = bad) that ``ccdproc.ccdmask`` flags in the ratio image with
    the rules' parameters."""
    from astropy.nddata import CCDData
    from ccdproc import ccdmask

    return np.asarray(
        ccdmask(
            CCDData(np.asarray(ratio, np.float64), unit="adu"),
            findbadcolumns=options.findbadcolumns,
            byblocks=options.byblocks,
            ncmed=options.ncmed,
            nlmed=options.nlmed,
            ncsig=options.ncsig,
            nlsig=options.nlsig,
            lsigma=options.lsigma,
            hsigma=options.hsigma,
            ngood=options.ngood,
        ),
        bool,
    )


def hot_pixels(dark: np.ndarray, sigma: float) -> np.ndarray:
    """The pixels of a master dark (bool) above its median by more than ``sigma`` MAD
    standard deviations (of its finite pixels)."""
    from astropy.stats import mad_std

    dark = np.asarray(dark, np.float64)
    finite = dark[np.isfinite(dark)]
    if finite.size == 0:
        return np.zeros(dark.shape, bool)
    median = float(np.median(finite))
    spread = float(mad_std(finite))
    with np.errstate(invalid="ignore"):
        return dark > median + sigma * spread if spread > 0 else np.zeros(dark.shape, bool)


def bad_pixel_mask(flat_bad: np.ndarray, hot: np.ndarray | None = None) -> np.ndarray:
    """The mask product (``uint8``): :data:`BPM_FLAT` | :data:`BPM_HOT` per pixel."""
    out = np.where(flat_bad, BPM_FLAT, 0).astype(np.uint8)
    if hot is not None:
        out[hot] |= BPM_HOT
    return out


def qc_bad_pixels(mask: np.ndarray, level_ratio: float) -> dict[str, float]:
    """QC of a bad-pixel mask: ``bad_fraction`` (any flag), ``hot_pixels`` (count of dark
    outliers), ``bad_columns`` (columns flagged over more than half their length) and the
    ``level_ratio`` of the two flat levels it was derived from."""
    bad = mask != 0
    return {
        "bad_fraction": float(np.count_nonzero(bad) / bad.size),
        "hot_pixels": float(np.count_nonzero(mask & BPM_HOT)),
        "bad_columns": float(np.count_nonzero(bad.mean(axis=0) > 0.5)),
        "level_ratio": float(level_ratio),
    }
