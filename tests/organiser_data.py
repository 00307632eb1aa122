"""A synthetic, seeded workspace of raw CCD frames for the organiser and cascade tests."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

MJD_NIGHT1 = 61050.1  # 2026-01-10T02:24 UTC -> night 2026-01-09
MJD_NIGHT2 = 61051.1


@dataclass(frozen=True)
class Frame:
    name: str
    imagetyp: str
    exptime: float
    mjd: float
    filter: str = ""
    binning: int = 1
    gain: float = 1.5
    level: float = 1000.0  # bias level, ADU


def frames() -> list[Frame]:
    """The workspace's frames: two nights, several binnings, filters and exposure times."""
    out: list[Frame] = []
    for i in range(5):
        out.append(
            Frame(
                f"n1_bias_{i}.fits", "BIAS" if i % 2 else "Bias Frame", 0.0, MJD_NIGHT1 + i * 1e-3
            )
        )
    for i in range(3):
        out.append(
            Frame(f"n1_dark60_{i}.fits", "DARK", 60.0 + 1e-4 * i, MJD_NIGHT1 + 0.01 + i * 1e-3)
        )
        out.append(Frame(f"n1_dark120_{i}.fits", "Dark Frame", 120.0, MJD_NIGHT1 + 0.02 + i * 1e-3))
    for i in range(5):
        out.append(Frame(f"n1_flatR_{i}.fits", "FLAT", 2.0, MJD_NIGHT1 + 0.03 + i * 1e-3, "R"))
    for i in range(2):  # too few flats in V: incomplete set
        out.append(
            Frame(f"n1_flatV_{i}.fits", "Flat Field", 2.0, MJD_NIGHT1 + 0.04 + i * 1e-3, "V")
        )
    for i in range(3):
        out.append(
            Frame(
                f"n1_sciR_{i}.fits",
                "LIGHT" if i else "Light Frame",
                60.0,
                MJD_NIGHT1 + 0.1 + i * 1e-2,
                "R",
            )
        )
    out.append(Frame("n1_sciV_0.fits", "OBJECT", 100.0, MJD_NIGHT1 + 0.15, "V"))
    out.append(Frame("n1_sci2x2_0.fits", "SCIENCE", 60.0, MJD_NIGHT1 + 0.16, "R", binning=2))
    for i in range(4):
        out.append(Frame(f"n2_bias_{i}.fits", "ZERO", 0.0, MJD_NIGHT2 + i * 1e-3))
    for i in range(3):
        out.append(Frame(f"n2_dark90_{i}.fits", "DARK", 90.0, MJD_NIGHT2 + 0.01 + i * 1e-3))
    for i in range(5):
        out.append(Frame(f"n2_flatR_{i}.fits", "SKYFLAT", 3.0, MJD_NIGHT2 + 0.03 + i * 1e-3, "R"))
    for i in range(2):
        out.append(Frame(f"n2_sciR_{i}.fits", "LIGHT", 90.0, MJD_NIGHT2 + 0.1 + i * 1e-2, "R"))
    return out


def frame_pixels(frame: Frame, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Bias level + read noise (10 ADU) + dark current (0.5 ADU/s) + flat-fielded sky."""
    h, w = shape
    data = frame.level + rng.normal(0.0, 10.0, shape)
    kind = frame.imagetyp.lower()
    if "dark" in kind or "flat" in kind or "light" in kind or kind in ("object", "science"):
        data += 0.5 * frame.exptime
    if "flat" in kind or "light" in kind or kind in ("object", "science"):
        yy, xx = np.mgrid[0:h, 0:w]
        vignette = 1.0 - 0.2 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)
        sky = 20000.0 if "flat" in kind else 500.0
        data += sky * vignette
    return data.astype(np.float32)


def write_frame(
    path: Path, frame: Frame, rng: np.random.Generator, shape: tuple[int, int] = (16, 16)
) -> None:
    b = frame.binning
    header = fits.Header()
    header["IMAGETYP"] = frame.imagetyp
    header["EXPTIME"] = frame.exptime
    header["MJD-OBS"] = frame.mjd
    header["INSTRUME"] = "TESTCAM"
    header["XBINNING"] = b
    header["YBINNING"] = b
    header["GAIN"] = frame.gain
    header["READOUTM"] = "Fast"
    if frame.filter:
        header["FILTER"] = frame.filter
    header["OBJECT"] = "M42" if "sci" in frame.name else frame.imagetyp
    hdu = fits.PrimaryHDU(frame_pixels(frame, rng, (shape[0] // b, shape[1] // b)), header)
    hdu.writeto(path, overwrite=True)


def make_workspace(
    root: Path, rng: np.random.Generator, shape: tuple[int, int] = (16, 16)
) -> list[Frame]:
    """Write every frame into ``root`` plus bad files, a ``.Z`` and a ``.gz`` frame."""
    import ncompress

    root.mkdir(parents=True, exist_ok=True)
    all_frames = frames()
    for frame in all_frames:
        write_frame(root / frame.name, frame, rng, shape)
    # n2_bias_3 compressed with compress(1), n2_flatR_4 with gzip
    z = root / "n2_bias_3.fits"
    (root / "n2_bias_3.fits.Z").write_bytes(ncompress.compress(z.read_bytes()))
    z.unlink()
    g = root / "n2_flatR_4.fits"
    (root / "n2_flatR_4.fits.gz").write_bytes(gzip.compress(g.read_bytes()))
    g.unlink()
    (root / "corrupt.fits").write_bytes(b"this is not FITS at all" * 200)
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(root / "noheader.fits")
    bad_type = fits.PrimaryHDU(np.zeros((4, 4), np.float32))
    bad_type.header["IMAGETYP"] = "FOCUS"
    bad_type.header["EXPTIME"] = 1.0
    bad_type.header["MJD-OBS"] = MJD_NIGHT1
    bad_type.writeto(root / "focus.fits")
    (root / "readme.txt").write_text("notes")
    return all_frames
