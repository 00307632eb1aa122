"""Image quality of a reduced frame, with sep (Source Extractor as a library): how many
sources, how sharp and how round they are, and the sky.

The sky (median and noise) is sep's background map over the unmasked pixels. Sources are
extracted at ``threshold`` times the sky noise; the FWHM is that of a circular Moffat profile
fitted to each of the brightest unblended, unflagged, unsaturated stars (up to ``stars``), so it
measures seeing, defocus and trailing whatever the profile's wings; the ellipticity is
``1 - b/a`` of sep's second moments. FWHM and ellipticity are medians over those stars.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["image_quality", "measure_frame", "moffat_fwhm"]


def moffat_fwhm(alpha: float, beta: float) -> float:
    """FWHM (pixels) of a Moffat profile ``(1 + r^2/alpha^2)^-beta``."""
    return 2.0 * alpha * math.sqrt(2.0 ** (1.0 / beta) - 1.0)


def _fit_star(cutout: np.ndarray, x0: float, y0: float) -> float | None:
    """FWHM of a circular Moffat fitted to a background-subtracted cutout; None when the fit
    fails or is implausible."""
    from scipy.optimize import least_squares

    yy, xx = np.mgrid[0 : cutout.shape[0], 0 : cutout.shape[1]]
    peak = float(np.nanmax(cutout))
    if not peak > 0:
        return None

    def residual(p: np.ndarray) -> np.ndarray:
        amp, x, y, alpha, beta = p
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        return (amp * (1 + r2 / alpha**2) ** (-beta) - cutout).ravel()

    def jacobian(p: np.ndarray) -> np.ndarray:
        # the model's derivatives (analytic: one evaluation per step instead of six)
        amp, x, y, alpha, beta = p
        dx, dy = xx - x, yy - y
        r2 = dx**2 + dy**2
        u = 1 + r2 / alpha**2
        profile = u ** (-beta)
        slope = 2 * amp * beta * profile / u / alpha**2  # -d(model)/d(r2) * 2
        return np.column_stack(
            [
                profile.ravel(),
                (slope * dx).ravel(),
                (slope * dy).ravel(),
                (slope * r2 / alpha).ravel(),
                (-amp * profile * np.log(u)).ravel(),
            ]
        )

    start = np.array([peak, x0, y0, 2.0, 2.5])
    try:
        fit = least_squares(
            residual,
            start,
            jac=jacobian,
            bounds=([0, 0, 0, 0.3, 1.01], [np.inf, cutout.shape[1], cutout.shape[0], 50, 20]),
            max_nfev=200,
        )
    except (ValueError, RuntimeError):
        return None
    if not fit.success:
        return None
    fwhm = moffat_fwhm(fit.x[3], fit.x[4])
    return fwhm if 0.5 < fwhm < min(cutout.shape) else None


def image_quality(
    science: np.ndarray,
    masked: np.ndarray,
    *,
    saturation: float = np.inf,
    pixel_scale_arcsec: float | None = None,
    threshold: float = 5.0,
    stars: int = 50,
) -> dict[str, float]:
    """QC metrics of a reduced frame (its unit; pixels, arcsec): ``sources``, ``sky_median``,
    ``sky_noise``, and when stars were measured ``fwhm`` (pixels), ``fwhm_arcsec`` (with a
    pixel scale) and ``ellipticity``."""
    return measure_frame(
        science,
        masked,
        saturation=saturation,
        pixel_scale_arcsec=pixel_scale_arcsec,
        threshold=threshold,
        stars=stars,
    )[0]


def measure_frame(
    science: np.ndarray,
    masked: np.ndarray,
    *,
    saturation: float = np.inf,
    pixel_scale_arcsec: float | None = None,
    threshold: float = 5.0,
    stars: int = 50,
    fit: bool = True,
) -> tuple[dict[str, float], np.ndarray]:
    """:func:`image_quality`'s metrics (without the star fits when ``fit`` is false: sources
    and sky only) and the sources themselves: an ``(n, 3)`` array of ``x``, ``y`` (0-based
    pixels) and flux (background-subtracted, the frame's unit) of sep's unflagged detections,
    brightest first (what an astrometric solver is given)."""
    import sep

    # float32 (sep's native type): half the memory traffic of float64
    finite = np.isfinite(science)
    subtracted = np.array(science, dtype=np.float32, order="C")  # the product stays as it is
    if not finite.all():
        subtracted[~finite] = 0.0
    mask = np.ascontiguousarray(masked | ~finite, dtype=bool)
    background = sep.Background(subtracted, mask=mask)
    out = {"sky_median": float(background.globalback), "sky_noise": float(background.globalrms)}
    background.subfrom(subtracted)  # in place
    try:
        objects = sep.extract(subtracted, threshold, err=background.globalrms, mask=mask, minarea=5)
    except Exception:  # sep: too many objects or pixels (a frame that is all nebula)
        objects = np.zeros(0, dtype=[("flag", int)])
    out["sources"] = float(len(objects))
    if len(objects) == 0:
        return out, np.zeros((0, 3))
    clean = objects[objects["flag"] == 0] if "x" in objects.dtype.names else objects
    order = np.argsort(clean["flux"])[::-1]
    sources = np.column_stack([clean["x"][order], clean["y"][order], clean["flux"][order]])
    if not fit:
        return out, sources
    height, width = subtracted.shape
    half = 7
    usable = (
        (objects["flag"] == 0)
        & (objects["peak"] + background.globalback < 0.8 * saturation)
        & (objects["x"] > half)
        & (objects["x"] < width - half - 1)
        & (objects["y"] > half)
        & (objects["y"] < height - half - 1)
    )
    chosen = objects[usable]
    chosen = chosen[np.argsort(chosen["flux"])[::-1][:stars]]
    fwhms = []
    for obj in chosen:
        xc, yc = int(np.rint(obj["x"])), int(np.rint(obj["y"]))
        cutout = subtracted[yc - half : yc + half + 1, xc - half : xc + half + 1]
        if mask[yc - half : yc + half + 1, xc - half : xc + half + 1].any():
            continue
        fwhm = _fit_star(cutout, obj["x"] - (xc - half), obj["y"] - (yc - half))
        if fwhm is not None:
            fwhms.append(fwhm)
    if len(fwhms) >= 3:
        out["fwhm"] = float(np.median(fwhms))
        if pixel_scale_arcsec:
            out["fwhm_arcsec"] = out["fwhm"] * pixel_scale_arcsec
        ratio = chosen["b"] / np.maximum(chosen["a"], 1e-9)
        out["ellipticity"] = float(np.median(1.0 - ratio))
    return out, sources
