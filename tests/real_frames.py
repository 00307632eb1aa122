"""Real raw frames of real instruments, read from the installed packages' test data (small,
BSD-licensed), and seeded calibration frames made from their headers."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clip


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


WFPC2 = "test0.fits"
STIS = "o4sp040b0_raw.fits"


def wfpc2_night(root: Path, rng: np.random.Generator) -> Path:
    """HST WFPC2's real raw frame (four SCI chips) and a seeded set of calibrations made from
    its headers: 3 biases, 3 darks and 3 flats, each chip with its own bias level and
    flat-field pattern."""
    root.mkdir(parents=True, exist_ok=True)
    source = astropy_data(WFPC2)
    (root / WFPC2).write_bytes(source.read_bytes())
    with fits.open(source) as hdul:
        primary = hdul[0].header.copy()
        chips = [(h.header.copy(), h.data.shape) for h in hdul[1:]]
    gain = primary["ATODGAIN"]

    def frame(kind: str, n: int, exptime: float, signal: float, mjd: float) -> None:
        head = primary.copy()
        head["IMAGETYP"] = kind.upper()
        head["EXPTIME"] = exptime
        head["EXPSTART"] = mjd
        hdus: list = [fits.PrimaryHDU(header=head)]
        for chip, (header, shape) in enumerate(chips, start=1):
            yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
            pattern = 1.0 - 0.05 * chip * ((xx - 20) ** 2 + (yy - 20) ** 2) / 800.0
            electrons = rng.poisson(signal * pattern * gain) if signal else 0.0
            adu = 300.0 + 10 * chip + electrons / gain + rng.normal(0, 5.0 / gain, shape)
            hdus.append(fits.ImageHDU(np.round(adu).astype(np.int16), header))
        fits.HDUList(hdus).writeto(root / f"wfpc2_{kind}_{n}.fits")

    for n in range(3):
        frame("bias", n, 0.0, 0.0, 49491.66 + n * 1e-3)
        frame("dark", n, 100.0, 50.0, 49491.67 + n * 1e-3)  # 0.5 ADU/s of dark current
        frame("flat", n, 1.0, 2000.0, 49491.68 + n * 1e-3)
    return root


def _night_of(frame: Callable[[str, int, float, float, float], None], flats: int) -> None:
    """The seeded nights' frames, each made by ``frame(kind, n, exptime, signal, mjd)``:
    5 biases, 3 darks of 60 s (0.1 e-/s), ``flats`` flats of 5 s and 2 science frames of
    60 s, one night (MJD 61050)."""
    for n in range(5):
        frame("bias", n, 0.0, 0.0, 61050.10 + n * 1e-3)
    for n in range(3):
        frame("dark", n, 60.0, 0.1 * 60.0, 61050.11 + n * 1e-3)
    for n in range(flats):
        frame("flat", n, 5.0, 20000.0, 61050.12 + n * 1e-3)
    for n in range(2):
        frame("object", n, 60.0, 800.0, 61050.20 + n * 1e-3)


#: The amplifiers of the seeded two-amplifier camera: name, overscan, data, gain, read noise.
AMPLIFIERS = (
    ("AMP1", "[49:56,1:64]", "[1:48,1:64]", 1.5, 4.0),
    ("AMP2", "[1:8,1:64]", "[9:56,1:64]", 2.2, 6.0),
)


def two_amp_night(root: Path, rng: np.random.Generator) -> Path:
    """A seeded night of a two-amplifier camera writing one extension per amplifier (64 rows
    by 56 columns: 48 of data and an 8-column overscan strip, left or right), each with its
    own BIASSEC, TRIMSEC, GAIN and RDNOISE: 5 biases, 3 darks, 3 flats and 2 science frames."""
    root.mkdir(parents=True, exist_ok=True)
    rows, cols = 64, 56
    yy, xx = np.mgrid[0:rows, 0:cols]

    def frame(kind: str, n: int, exptime: float, signal: float, mjd: float) -> None:
        primary = fits.Header()
        primary.update({"IMAGETYP": kind, "EXPTIME": exptime, "FILTER": "R", "INSTRUME": "TWOAMP"})
        primary["MJD-OBS"] = mjd
        hdus: list = [fits.PrimaryHDU(header=primary)]
        for amp, (name, biassec, trimsec, gain, noise) in enumerate(AMPLIFIERS):
            level = 400.0 + 50 * amp + 3.0 * yy / rows + rng.normal(0, 0.5)
            pattern = 1.0 - 0.1 * ((xx - 28) ** 2 + (yy - 32) ** 2) / 2000.0
            electrons = rng.poisson(signal * pattern) if signal else 0.0
            adu = level + electrons / gain + rng.normal(0.0, noise / gain, (rows, cols))
            data_cols = slice(0, 48) if amp == 0 else slice(8, 56)
            over = np.ones(cols, bool)
            over[data_cols] = False
            adu[:, over] = level[:, over] + rng.normal(0.0, noise / gain, (rows, 8))
            header = fits.Header()
            header.update({"BIASSEC": biassec, "TRIMSEC": trimsec, "GAIN": gain})
            header["RDNOISE"] = noise
            header["SATURATE"] = 65000
            hdus.append(fits.ImageHDU(np.round(adu).astype(np.uint16), header, name=name, ver=1))
        fits.HDUList(hdus).writeto(root / f"amp_{kind}_{n}.fits")

    _night_of(frame, flats=3)
    return root


def clipped_mean(frames: list[np.ndarray]) -> np.ndarray:
    """The reference of astroflow's combine: astropy's sigma clip (3 sigma about the median,
    MAD std, 3 iterations), then the mean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sigma_clip(
            np.stack(frames), sigma=3, maxiters=3, cenfunc="median", stdfunc="mad_std", axis=0
        ).mean(axis=0)
    return np.ma.filled(ref, np.nan)


#: The outputs of the seeded ESO chip (one array, two outputs side by side, as FORS2 and
#: EFOSC2 write them): name, X location, CONAD (e-/ADU), RON (e-), and where ccdproc finds
#: its overscan and valid pixels (FITS sections, written out by hand from ESO's layout:
#: [prescan][valid][overscan] for the output at X = 1, [overscan][valid][prescan] for the
#: one at the far end).
ESO_OUTPUTS = (
    ("OUT1", 1, 1.5, 4.0, "[53:58,1:64]", "[5:52,1:64]"),
    ("OUT2", 96, 2.2, 6.0, "[59:64,1:64]", "[65:112,1:64]"),
)


def eso_outputs_night(root: Path, rng: np.random.Generator) -> Path:
    """A seeded night of an ESO imager writing one array per frame that two outputs read
    (64 rows by 116 columns: per output 48 valid columns, a 4-column prescan and a 6-column
    overscan), described by ``ESO DET OUTi`` keywords, each output with its own bias level,
    CONAD and RON; ESO DPR keywords, a TAN WCS. 5 biases, 3 darks, 5 flats, 2 science."""
    root.mkdir(parents=True, exist_ok=True)
    rows, cols = 64, 116
    yy, xx = np.mgrid[0:rows, 0:cols]
    valid = {"OUT1": slice(4, 52), "OUT2": slice(64, 112)}

    def frame(kind: str, n: int, exptime: float, signal: float, mjd: float) -> None:
        h = fits.Header()
        catg, dpr_type = ("SCIENCE", "OBJECT") if kind == "object" else ("CALIB", kind.upper())
        if kind == "flat":
            dpr_type = "FLAT,SKY"
        h.update({"INSTRUME": "FORS2", "EXPTIME": exptime, "MJD-OBS": mjd})
        h.update({"HIERARCH ESO DPR CATG": catg, "HIERARCH ESO DPR TYPE": dpr_type})
        h["HIERARCH ESO DPR TECH"] = "IMAGE,JITTER" if kind == "object" else "IMAGE"
        h.update({"HIERARCH ESO INS FILT1 NAME": "R_SPECIAL", "HIERARCH ESO DET BINX": 1})
        h.update({"HIERARCH ESO DET BINY": 1, "HIERARCH ESO DET READ SPEED": "normal"})
        h.update({"HIERARCH ESO TEL GEOLON": -70.4045, "HIERARCH ESO DET OUTPUTS": 2})
        h.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": -30.0})
        h.update({"CRPIX1": 60.0, "CRPIX2": 32.0, "CD1_1": -7e-5, "CD2_2": 7e-5})
        adu = np.zeros((rows, cols))
        pattern = 1.0 - 0.1 * ((xx - 58) ** 2 + (yy - 32) ** 2) / 4000.0
        electrons = rng.poisson(signal * pattern) if signal else np.zeros((rows, cols))
        for name, x, conad, ron, _, _ in ESO_OUTPUTS:
            p = f"HIERARCH ESO DET {name} "
            h.update({p + "X": x, p + "Y": 1, p + "NX": 48, p + "NY": 64, p + "PRSCX": 4})
            h.update({p + "OVSCX": 6, p + "PRSCY": 0, p + "OVSCY": 0, p + "CONAD": conad})
            h.update({p + "RON": ron, p + "GAIN": round(1 / conad, 3)})
            port = slice(0, 58) if name == "OUT1" else slice(58, 116)
            level = 200.0 + (40.0 if name == "OUT2" else 0.0) + 2.0 * yy[:, port] / rows
            noise = rng.normal(0.0, ron / conad, (rows, 58))
            adu[:, port] = level + rng.normal(0, 0.5) + noise
            adu[:, valid[name]] += electrons[:, valid[name]] / conad
        fits.PrimaryHDU(np.round(adu).astype(np.uint16), h).writeto(root / f"fors_{kind}_{n}.fits")

    _night_of(frame, flats=5)  # (eso-imager's mflat needs 5)
    return root
