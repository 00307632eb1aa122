"""Cosmic rays of a reduced frame: L.A.Cosmic (van Dokkum 2001) as astroscrappy computes it
(the implementation ccdproc's ``cosmicray_lacosmic`` and LCO's BANZAI call), with its kernels,
through :mod:`astroflow.processing.lacosmic` (the same mask, without repeating the
whole-frame detection on every iteration).

The frame is taken as it is after bias, dark and flat (sky included, as L.A.Cosmic wants), in
electrons (``gain`` 1) or in ADU with its gain; pixels already masked (bad calibration,
non-finite, saturated) are left out of the detection. Flagged pixels go into the MASK plane as
bit 8; their values are replaced (astroscrappy's mean of the unflagged, unmasked 5x5
neighbours) only when the rules ask (``clean: true``).
"""

from __future__ import annotations

import numpy as np

from astroflow.models.rules import CosmicRays
from astroflow.processing import lacosmic

#: MASK bit of a pixel hit by a cosmic ray (bits 1, 2, 4: bad calibration, saturated,
#: non-finite raw value).
MASK_COSMIC_RAY = 8


def detect_cosmic_rays(
    science: np.ndarray,
    masked: np.ndarray,
    *,
    gain: float,
    read_noise: float,
    saturation: float,
    rules: CosmicRays,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The cosmic-ray pixels of ``science`` (bool, ``[y, x]``) and, with ``rules.clean``, the
    frame with them replaced (else None).

    Parameters
    ----------
    masked
        Pixels to leave out (bool): astroscrappy's ``inmask``.
    gain
        e-/unit of ``science`` (1 for a frame in electrons).
    read_noise
        In electrons.
    saturation
        In the unit of ``science``: stars at or above it are protected as saturated.
    """
    data = np.ascontiguousarray(science, dtype=np.float32)
    crmask, cleaned = lacosmic.detect_cosmics(
        np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0),
        np.ascontiguousarray(masked, dtype=bool),
        gain=float(gain),
        readnoise=float(read_noise),
        satlevel=float(saturation) if np.isfinite(saturation) else 1e30,
        sigclip=rules.sigclip,
        sigfrac=rules.sigfrac,
        objlim=rules.objlim,
        niter=rules.niter,
        sepmed=True,
    )
    crmask = np.asarray(crmask, dtype=bool)
    if not rules.clean:
        return crmask, None
    return crmask, np.where(crmask, cleaned, science).astype(np.float32)
