"""Real raw frames of real instruments, read from the installed packages' test data (small,
BSD-licensed), and seeded calibration frames made from their headers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits


def ccdproc_data(name: str) -> Path:
    """A file of ccdproc's test data (``a8280271.fits``: SAAO 1.0 m, STE3 CCD, raw object)."""
    import ccdproc

    return Path(os.path.dirname(ccdproc.__file__)) / "tests" / "data" / name


def astropy_data(name: str) -> Path:
    """A file of astropy.io.fits' test data (``test0.fits``: HST WFPC2 raw; ``lzw.fits.Z``)."""
    import astropy.io.fits.tests

    return Path(os.path.dirname(astropy.io.fits.tests.__file__)) / "data" / name


SAAO = "a8280271.fits"


def saao_night(root: Path, rng: np.random.Generator) -> Path:
    """A workspace holding SAAO's real raw object frame and a seeded night of calibrations
    made from its header (same geometry: overscan in columns 4-13, data in 17-528): 5 biases,
    3 darks of its exposure time, 3 flats. Every frame has an overscan level that varies
    along the rows, as a real amplifier's does."""
    root.mkdir(parents=True, exist_ok=True)
    science = ccdproc_data(SAAO)
    header = fits.getheader(science)
    (root / SAAO).write_bytes(science.read_bytes())
    rows, cols = header["NAXIS2"], header["NAXIS1"]
    gain = header["GAIN"]
    yy, xx = np.mgrid[0:rows, 0:cols]
    bias_shape = 3.0 * np.sin(xx / 40.0)  # fixed pattern, ADU
    vignette = 1.0 - 0.15 * (((xx - cols / 2) / cols) ** 2 + ((yy - rows / 2) / rows) ** 2)

    def frame(kind: str, n: int, exptime: float, signal: np.ndarray | float, mjd: float) -> None:
        level = 214.0 + 2.0 * yy / rows + rng.normal(0, 0.3)  # overscan level per row, ADU
        electrons = rng.poisson(np.clip(signal * gain, 0, None)) if exptime else 0.0
        adu = level + bias_shape + electrons / gain + rng.normal(0.0, 5.0 / gain, (rows, cols))
        adu[:, :16] = level[:, :16] + rng.normal(0.0, 5.0 / gain, (rows, 16))  # overscan area
        h = header.copy()
        h["IMAGETYP"] = kind
        h["OBJECT"] = kind
        h["EXPTIME"] = exptime
        h["MJD-OBS"] = mjd
        path = root / f"saao_{kind}_{n}.fits"
        fits.PrimaryHDU(np.clip(np.round(adu), 0, 65535).astype(np.uint16), header=h).writeto(path)

    for n in range(5):
        frame("zero", n, 0.0, 0.0, 56485.90 + n * 1e-3)
    for n in range(3):
        frame("dark", n, header["EXPTIME"], 0.02 * header["EXPTIME"], 56485.91 + n * 1e-3)
    for n in range(3):
        frame("flat", n, 10.0, 12000.0 * vignette, 56485.92 + n * 1e-3)
    return root
