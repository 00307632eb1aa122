"""A small, realistic synthetic night of CCD frames (seeded): the demo's raw data.

Two nights of a 1x1-binned camera (gain 1.5 e-/ADU, read noise 10 ADU, bias 1000 ADU, dark
current 0.05 ADU/s with a few hot pixels, vignetted flat field). The second night has science
frames of the Orion Nebula field (TAN WCS centred on M42) with Moffat stars on a sky of 300 ADU,
and a deliberately bad R flat set (a dead patch), so the cascade substitutes the first night's
R flat. Values in ADU; arrays ``[y, x]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BIAS_LEVEL = 1000.0  # ADU
READ_NOISE = 10.0  # ADU
GAIN = 1.5  # e-/ADU
DARK_CURRENT = 0.05  # ADU/s
SKY = 300.0  # ADU in a science exposure
FIELD_RA, FIELD_DEC = 83.8221, -5.3911  # M42
PIXEL_SCALE = 1.0 / 3600  # deg/pixel (1 arcsec)


@dataclass(frozen=True)
class SynthFrame:
    """One synthetic frame: file name, header cards and pixels (float32 ADU)."""

    name: str
    header: dict[str, object]
    data: np.ndarray


def _vignetting(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    return 1.0 - 0.6 * r2


def _moffat_stars(shape: tuple[int, int], rng: np.random.Generator, n: int) -> np.ndarray:
    h, w = shape
    img = np.zeros(shape)
    ys, xs = rng.uniform(0, h, n), rng.uniform(0, w, n)
    fluxes = 20000.0 * rng.pareto(1.5, n) + 2000.0  # many faint, few bright
    alpha, beta = 2.5, 3.0  # Moffat core ~2.5 px (FWHM ~ 2.6 arcsec at 1"/px)
    yy, xx = np.mgrid[0:h, 0:w]
    for y, x, f in zip(ys, xs, fluxes, strict=True):
        y0, y1 = max(0, int(y) - 12), min(h, int(y) + 13)
        x0, x1 = max(0, int(x) - 12), min(w, int(x) + 13)
        r2 = (xx[y0:y1, x0:x1] - x) ** 2 + (yy[y0:y1, x0:x1] - y) ** 2
        profile = (1 + r2 / alpha**2) ** (-beta)
        img[y0:y1, x0:x1] += f * profile * (beta - 1) / (np.pi * alpha**2)
    return img


def science_wcs_header(shape: tuple[int, int], rotation_deg: float = 12.0) -> dict[str, object]:
    """A TAN WCS (FITS convention: y from the bottom, east left) centred on M42."""
    h, w = shape
    t = np.radians(rotation_deg)
    s = PIXEL_SCALE
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRVAL1": FIELD_RA,
        "CRVAL2": FIELD_DEC,
        "CRPIX1": (w + 1) / 2,
        "CRPIX2": (h + 1) / 2,
        "CD1_1": -s * np.cos(t),
        "CD1_2": s * np.sin(t),
        "CD2_1": s * np.sin(t),
        "CD2_2": s * np.cos(t),
        "RADESYS": "ICRS",
    }


def night_frames(shape: tuple[int, int] = (256, 256), seed: int = 2026) -> list[SynthFrame]:
    """Every frame of the two synthetic nights."""
    rng = np.random.default_rng(seed)
    hot = np.zeros(shape)
    hot[rng.integers(0, shape[0], 12), rng.integers(0, shape[1], 12)] = 2.0  # ADU/s
    vignette = _vignetting(shape)
    stars = _moffat_stars(shape, rng, 60)
    frames: list[SynthFrame] = []

    def add(
        name: str,
        imagetyp: str,
        exptime: float,
        mjd: float,
        signal: np.ndarray | float,
        filt: str = "",
        extra: dict[str, object] | None = None,
    ) -> None:
        electrons = np.clip(np.asarray(signal, dtype=np.float64) * GAIN, 0, None)
        photon = rng.poisson(np.broadcast_to(electrons, shape)) / GAIN
        dark = (DARK_CURRENT + hot) * exptime
        data = BIAS_LEVEL + photon + dark + rng.normal(0.0, READ_NOISE, shape)
        header = {
            "IMAGETYP": imagetyp,
            "EXPTIME": exptime,
            "MJD-OBS": mjd,
            "INSTRUME": "DEMOCAM",
            "XBINNING": 1,
            "YBINNING": 1,
            "GAIN": GAIN,
            "READOUTM": "Normal",
            "OBJECT": "M42" if imagetyp == "Light Frame" else imagetyp,
            "SATURATE": 65000.0,
        }
        if filt:
            header["FILTER"] = filt
        header.update(extra or {})
        frames.append(SynthFrame(name, header, np.clip(data, 0, 65535).astype(np.float32)))

    for night, mjd in (("n1", 61100.05), ("n2", 61101.05)):
        for i in range(5):
            add(f"{night}_bias_{i:02d}.fits", "Bias Frame", 0.0, mjd + i * 1e-4, 0.0)
        for i in range(3):
            add(f"{night}_dark_{i:02d}.fits", "Dark Frame", 120.0, mjd + 0.01 + i * 1e-3, 0.0)
        for filt, level in (("R", 18000.0), ("V", 14000.0)):
            flat = level * vignette
            if night == "n2" and filt == "R":  # the bad set: a dead patch in every frame
                flat = flat.copy()
                flat[: shape[0] // 3, : shape[1] // 3] *= 0.05
            for i in range(5):
                add(
                    f"{night}_flat{filt}_{i:02d}.fits",
                    "Flat Field",
                    3.0,
                    mjd + 0.02 + i * 1e-3,
                    flat,
                    filt,
                )
    wcs = science_wcs_header(shape)
    for i, filt in enumerate(["R", "R", "V"]):
        scale = 1.0 if filt == "R" else 0.7
        signal = (SKY + stars * scale) * vignette
        add(
            f"n2_m42_{filt}_{i:02d}.fits",
            "Light Frame",
            120.0,
            61101.2 + i * 2e-3,
            signal,
            filt,
            wcs,
        )
    return frames


def star_catalogue(
    ra: float, dec: float, radius_deg: float, n: int, seed: int = 28
) -> dict[str, np.ndarray]:
    """A seeded catalogue of ``n`` stars spread evenly over a cap of ``radius_deg`` around
    (``ra``, ``dec``): columns ``RA``, ``DEC`` (degrees), ``MAG`` (10-16) and ``ID``."""
    rng = np.random.default_rng(seed)
    r = np.degrees(np.arccos(1 - rng.uniform(0, 1, n) * (1 - np.cos(np.radians(radius_deg)))))
    bearing = rng.uniform(0, 2 * np.pi, n)
    d0, b = np.radians(dec), np.radians(r)
    lat = np.arcsin(np.sin(d0) * np.cos(b) + np.cos(d0) * np.sin(b) * np.cos(bearing))
    lon = np.radians(ra) + np.arctan2(
        np.sin(bearing) * np.sin(b) * np.cos(d0), np.cos(b) - np.sin(d0) * np.sin(lat)
    )
    return {
        "RA": np.degrees(lon) % 360.0,
        "DEC": np.degrees(lat),
        "MAG": rng.uniform(10.0, 16.0, n),
        "ID": np.arange(n),
    }


def render_stars(
    catalogue: dict[str, np.ndarray],
    header: dict[str, object],
    shape: tuple[int, int],
    fwhm: float = 2.8,
    zero_point: float = 24.0,
) -> np.ndarray:
    """The catalogue's stars drawn (Gaussian, ``fwhm`` pixels; flux ``10**(-0.4 (MAG -
    zero_point))`` ADU) where ``header``'s WCS puts them; ADU, no sky, no noise."""
    import warnings

    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header)
    x, y = wcs.all_world2pix(catalogue["RA"], catalogue["DEC"], 0)
    h, w = shape
    img = np.zeros(shape)
    sigma = fwhm / 2.3548
    inside = (x > -10) & (x < w + 10) & (y > -10) & (y < h + 10)
    for xi, yi, mag in zip(x[inside], y[inside], catalogue["MAG"][inside], strict=True):
        flux = 10 ** (-0.4 * (mag - zero_point))
        y0, y1 = max(0, int(yi) - 8), min(h, int(yi) + 9)
        x0, x1 = max(0, int(xi) - 8), min(w, int(xi) + 9)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        img[y0:y1, x0:x1] += (
            flux
            / (2 * np.pi * sigma**2)
            * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * sigma**2))
        )
    return img
