"""WCS handling for WWT studies: AVM conversion, parity, and the WTML placement.

All pixel positions in headers follow FITS (1-based, ``CRPIXn``); the functions say which
row order ("top-down": row 0 is the top of the picture) a header describes.

The headers here are plain celestial TAN headers with a CD matrix (what :func:`avm_to_header`
and :func:`header_from_wcs` make), and :func:`tan_pixel_to_sky` evaluates them with the
gnomonic projection's own formulas instead of through ``astropy.wcs``: importing that takes
half a second (``astropy.coordinates`` and ``astropy.units`` come with it), a tenth of a
picture's whole ingest, and a picture placed by its feed (AstroPix, Djangoplicity) needs
nothing else from astropy. The tests check it against astropy's ``pixel_to_world_values``.
FITS headers are turned into these plain ones by ``storage.fits_wcs`` (their plain forms from
the cards, the others by astropy), embedded AVM by pyavm and astropy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from astroflow.models.errors import WcsError
from astroflow.models.ingest import StudyPlacement

if TYPE_CHECKING:
    from astropy.wcs import WCS

TILE = 256
_TOL = 0.05  # tolerance on square pixels and skew, as wwt_data_formats


def study_geometry(width: int, height: int) -> tuple[int, int, int, int]:
    """The square tiling a study of ``width`` x ``height`` pixels sits in.

    Returns
    -------
    p2n, levels, x0, y0
        Side of the padded square (a power of two, at least 256), the number of levels below
        the top (``log2(p2n / 256)``), and the 0-based position of the image's top-left pixel
        in it (the image is centred; odd slack goes right/down as in toasty).
    """
    if width < 1 or height < 1:
        raise WcsError(f"image size {width}x{height} is empty")
    p2n = TILE
    while p2n < max(width, height):
        p2n *= 2
    levels = (p2n // TILE).bit_length() - 1
    return p2n, levels, (p2n - width) // 2, (p2n - height) // 2


def _floats(value: Any, n: int, key: str) -> list[float]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise WcsError(f"AVM field {key!r} is not {n} numbers: {value!r}") from exc
    if len(out) < n or not all(math.isfinite(v) for v in out[:n]):
        raise WcsError(f"AVM field {key!r} is not {n} finite numbers: {value!r}")
    return out[:n]


def avm_to_header(avm: Mapping[str, Any], width: int, height: int) -> dict[str, Any]:
    """Turn AVM-like ``wcs_*`` fields (an AstroPix feed, a Djangoplicity record) into a
    top-down FITS WCS header, exactly as toasty.

    The fields describe the picture with FITS-like parity; after rescaling from
    ``wcs_reference_dimension`` (when given) to the downloaded size they get toasty's parity
    flip (``CD1_2``, ``CD2_2`` negated, ``CRPIX2 = H + 1 - CRPIX2``) so that the header
    describes rows counted from the top.

    Raises
    ------
    WcsError
        For a missing or malformed field, or a projection other than TAN.
    """
    projection = str(avm.get("wcs_projection") or "")
    if projection != "TAN":
        raise WcsError(f"projection {projection or 'missing'!r} is not TAN")
    try:
        ref_value = _floats(avm["wcs_reference_value"], 2, "wcs_reference_value")
        ref_pixel = _floats(avm["wcs_reference_pixel"], 2, "wcs_reference_pixel")
        ref_dim = (
            _floats(avm["wcs_reference_dimension"], 2, "wcs_reference_dimension")
            if avm.get("wcs_reference_dimension") not in (None, "", [])
            else [float(width), float(height)]  # no reference size: the image's own
        )
        scale = _floats(avm["wcs_scale"], 2, "wcs_scale")
        rotation = _floats([avm["wcs_rotation"]], 1, "wcs_rotation")[0]
    except KeyError as exc:
        raise WcsError(f"AVM field {exc.args[0]!r} is missing") from None
    if ref_dim[0] <= 0 or ref_dim[1] <= 0 or scale[0] == 0 or scale[1] == 0:
        raise WcsError(f"AVM reference dimension {ref_dim} or scale {scale} is degenerate")
    crot = math.cos(math.radians(rotation))
    srot = math.sin(math.radians(rotation))
    lam = scale[1] / scale[0]
    pc1_1, pc1_2, pc2_1, pc2_2 = crot, -lam * srot, srot / lam, crot
    factor0 = width / ref_dim[0]
    factor1 = height / ref_dim[1]
    cdelt1 = scale[0] / factor0
    cdelt2 = scale[1] / factor1
    crpix2 = (ref_pixel[1] - 0.5) * factor1 + 0.5
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRVAL1": ref_value[0],
        "CRVAL2": ref_value[1],
        "CRPIX1": (ref_pixel[0] - 0.5) * factor0 + 0.5,
        "CRPIX2": height + 1 - crpix2,
        "CD1_1": cdelt1 * pc1_1,
        "CD1_2": -cdelt1 * pc1_2,
        "CD2_1": cdelt2 * pc2_1,
        "CD2_2": -cdelt2 * pc2_2,
    }


def rescale(
    header: Mapping[str, Any], made_for: tuple[int, int], size: tuple[int, int]
) -> dict[str, Any]:
    """The header of a WCS made for an image of ``made_for`` pixels, moved to the same picture
    at ``size`` pixels (width, height), as toasty's ``--fits-wcs`` does (CRPIX times the
    scale, CD over it).

    Raises
    ------
    WcsError
        When the two sizes have different aspect ratios (more than 0.5 %): the header then
        belongs to another picture.
    """
    scale_x = size[0] / made_for[0]
    scale_y = size[1] / made_for[1]
    if scale_x == 1 and scale_y == 1:
        return dict(header)
    if abs(scale_x - scale_y) / (scale_x + scale_y) >= 0.005:
        raise WcsError(
            f"the WCS was made for {made_for[0]}x{made_for[1]} pixels, which has another "
            f"aspect ratio than the image's {size[0]}x{size[1]}"
        )
    out = dict(header)
    for key in ("CRPIX1", "CRPIX2"):
        out[key] = float(header[key]) * scale_x
    for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2"):
        out[key] = float(header.get(key, 0.0)) / scale_x
    return out


def flip_rows(header: Mapping[str, Any], height: int) -> dict[str, Any]:
    """The header for the same picture with its rows in the opposite order."""
    out = dict(header)
    out["CRPIX2"] = height + 1 - float(header["CRPIX2"])
    out["CD1_2"] = -float(header.get("CD1_2", 0.0))
    out["CD2_2"] = -float(header["CD2_2"])
    return out


def header_from_wcs(wcs: WCS | Mapping[str, Any]) -> dict[str, Any]:
    """A plain CD-matrix header for the celestial part of an astropy WCS (a header already
    plain, as ``storage.fits_wcs.plain_tan_header`` makes, is returned as it is).

    Raises
    ------
    WcsError
        When the WCS has no celestial axes or is not an equatorial TAN projection.
    """
    if isinstance(wcs, Mapping):
        return dict(wcs)
    if not wcs.has_celestial:
        raise WcsError("no celestial WCS")
    cel = wcs.celestial
    ctype = [str(c) for c in cel.wcs.ctype]
    if not (ctype[0].startswith("RA--") and ctype[1].startswith("DEC-")):
        raise WcsError(f"WCS axes {ctype} are not equatorial RA/DEC (or are swapped)")
    if not (ctype[0].endswith("-TAN") and ctype[1].endswith("-TAN")):
        raise WcsError(f"WCS projection {ctype} is not TAN")
    cd = cel.pixel_scale_matrix
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRVAL1": float(cel.wcs.crval[0]),
        "CRVAL2": float(cel.wcs.crval[1]),
        "CRPIX1": float(cel.wcs.crpix[0]),
        "CRPIX2": float(cel.wcs.crpix[1]),
        "CD1_1": float(cd[0, 0]),
        "CD1_2": float(cd[0, 1]),
        "CD2_1": float(cd[1, 0]),
        "CD2_2": float(cd[1, 1]),
    }


def cd_determinant(header: Mapping[str, Any]) -> float:
    """Determinant of the header's CD matrix (positive: top-down parity)."""
    return float(header["CD1_1"]) * float(header["CD2_2"]) - float(
        header.get("CD1_2", 0.0)
    ) * float(header.get("CD2_1", 0.0))


def pixel_scale_arcsec(header: Mapping[str, Any]) -> float | None:
    """The mean pixel scale (arcsec/pixel) of a header's celestial WCS (CD or CDELT with
    PC); None when it has none."""
    try:
        if "CD1_1" in header:
            cd = [[float(header.get(f"CD{i}_{j}", 0.0)) for j in (1, 2)] for i in (1, 2)]
        else:
            d1, d2 = float(header["CDELT1"]), float(header["CDELT2"])
            pc = [[float(header.get(f"PC{i}_{j}", float(i == j))) for j in (1, 2)] for i in (1, 2)]
            cd = [[d1 * pc[0][0], d1 * pc[0][1]], [d2 * pc[1][0], d2 * pc[1][1]]]
    except (KeyError, TypeError, ValueError):
        return None
    if not str(header.get("CTYPE1", "")).startswith("RA"):
        return None
    det = abs(cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0])
    return math.sqrt(det) * 3600.0 if det > 0 else None


def placement(header: Mapping[str, Any], width: int, height: int) -> StudyPlacement:
    """Compute the WWT study placement of an image from its top-down TAN header.

    Follows ``wwt_data_formats.ImageSet.set_position_from_wcs`` for tiled imagery, also for
    images of 256 px or less, which become a valid one-tile study (``TileLevels=0``) instead
    of toasty's ``SkyImage``.

    Raises
    ------
    WcsError
        For a non-TAN header, a degenerate or bottom-up CD matrix, non-square pixels or skew,
        or an image centre with no sky position.
    """
    for key in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD2_2"):
        if key not in header:
            raise WcsError(f"WCS keyword {key} is missing")
    if header["CTYPE1"] != "RA---TAN" or header["CTYPE2"] != "DEC--TAN":
        raise WcsError(f"WCS projection {header['CTYPE1']}/{header['CTYPE2']} is not TAN")
    values = [float(header[k]) for k in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")]
    cd1_1, cd2_2 = float(header["CD1_1"]), float(header["CD2_2"])
    cd1_2, cd2_1 = float(header.get("CD1_2", 0.0)), float(header.get("CD2_1", 0.0))
    if not all(math.isfinite(v) for v in [*values, cd1_1, cd1_2, cd2_1, cd2_2]):
        raise WcsError("WCS has non-finite values")
    if not -90.0 <= values[1] <= 90.0:
        raise WcsError(f"CRVAL2 {values[1]} is not a declination")
    det = cd1_1 * cd2_2 - cd1_2 * cd2_1
    if not abs(det) > 0:
        raise WcsError("the CD matrix is singular")
    if det < 0:
        raise WcsError("tiled imagery needs top-down parity (positive CD determinant)")
    scale_x = math.hypot(cd1_1, cd1_2)
    scale_y = math.hypot(cd2_1, cd2_2)
    if abs(scale_x - scale_y) / (scale_x + scale_y) > _TOL:
        raise WcsError(f"pixels are not square ({scale_x:.3g} vs {scale_y:.3g} deg)")
    det_scale = math.sqrt(abs(det))
    if abs((cd1_1 - cd2_2) / det_scale) > _TOL or abs((cd2_1 + cd1_2) / det_scale) > _TOL:
        raise WcsError("the CD matrix has skew that WWT cannot express")
    _, levels, _, _ = study_geometry(width, height)
    rotation = math.degrees(math.atan2(-cd1_2, -cd2_2))
    refpix_x = values[2] - 0.5
    refpix_y = values[3] - 0.5
    ra, dec = (float(v) for v in tan_pixel_to_sky(header, (width - 1) / 2, (height - 1) / 2))
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise WcsError("the image centre has no sky position")
    return StudyPlacement(
        width=width,
        height=height,
        tile_levels=levels,
        center_x=values[0],
        center_y=values[1],
        rotation_deg=rotation,
        base_degrees_per_tile=scale_y * TILE * 2**levels,
        offset_x=((width + 1) // 2 - refpix_x) * scale_x,
        offset_y=(refpix_y - (height + 1) // 2) * scale_y,
        ra_hours=(ra % 360.0) / 15.0,
        dec_deg=dec,
        zoom_level=height * scale_y * 1.7 * 6,
    )


def tan_pixel_to_sky(header: Mapping[str, Any], x: Any, y: Any) -> tuple[Any, Any]:
    """0-based pixel positions to (RA, Dec) in degrees (RA in [0, 360)) for a plain TAN header
    (``CRVALn``, ``CRPIXn``, ``CDi_j``; the default ``LONPOLE``), by Calabretta & Greisen
    (2002): the CD matrix gives intermediate world coordinates, the gnomonic projection's
    inverse native spherical ones (``phi``, ``theta``), and the rotation to the celestial pole
    at ``(CRVAL1, CRVAL2)`` the sky position. Scalars or arrays."""
    ra0, dec0 = math.radians(float(header["CRVAL1"])), math.radians(float(header["CRVAL2"]))
    cd1_1, cd2_2 = float(header["CD1_1"]), float(header["CD2_2"])
    cd1_2, cd2_1 = float(header.get("CD1_2", 0.0)), float(header.get("CD2_1", 0.0))
    dx = np.asarray(x, np.float64) + 1.0 - float(header["CRPIX1"])  # FITS pixels are 1-based
    dy = np.asarray(y, np.float64) + 1.0 - float(header["CRPIX2"])
    u = np.radians(cd1_1 * dx + cd1_2 * dy)  # intermediate world coordinates, in radians
    v = np.radians(cd2_1 * dx + cd2_2 * dy)
    phi = np.arctan2(u, -v)  # native longitude; native latitude theta = atan(1 / R):
    r = np.hypot(u, v)
    sin_t, cos_t = 1.0 / np.sqrt(1.0 + r * r), r / np.sqrt(1.0 + r * r)
    # LONPOLE defaults to 180 deg (0 at the celestial pole itself, where it changes nothing)
    dphi = phi - (0.0 if dec0 >= math.pi / 2 else math.pi)
    sin_d0, cos_d0 = math.sin(dec0), math.cos(dec0)
    dec = np.arcsin(np.clip(sin_t * sin_d0 + cos_t * cos_d0 * np.cos(dphi), -1.0, 1.0))
    ra = ra0 + np.arctan2(-cos_t * np.sin(dphi), sin_t * cos_d0 - cos_t * sin_d0 * np.cos(dphi))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def _astropy_wcs(header: Mapping[str, Any]) -> WCS:
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(dict(header), naxis=2)


def orient_top_down(header: Mapping[str, Any], height: int) -> tuple[dict[str, Any], bool]:
    """Make a header top-down (positive determinant) by flipping rows when needed.

    Returns
    -------
    header, flipped
        The header for the rows as tiled, and whether the pixel rows must be reversed.
    """
    if cd_determinant(header) < 0:
        return flip_rows(header, height), True
    return dict(header), False


def pixel_to_sky(header: Mapping[str, Any], x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    """0-based pixel positions to (RA, Dec) in degrees for a header, by astropy (the reference
    for tests and QA)."""
    return _astropy_wcs(header).pixel_to_world_values(x, y)


#: Cards of a raw frame that describe its untrimmed pixels (stale once it is trimmed).
RAW_SECTION_KEYWORDS = ("BIASSEC", "TRIMSEC", "DATASEC", "CCDSEC")


def trimmed_header(header: Any, origin: tuple[int, int]) -> Any:
    """A copy of a raw frame's header for its pixels cut from ``origin`` (0-based ``(x0,
    y0)``): the WCS reference pixel shifted so that stars keep their sky positions
    (``CRPIXi``, and the alternate WCSs' ``CRPIXia``), IRAF's ``LTV1``/``LTV2`` (physical to
    image: ``LTVi`` decreases by the cut's start; ``LTMi_i`` set to 1 when absent), and the
    raw frame's section keywords removed."""
    out = header.copy()
    x0, y0 = origin
    for key in list(out.keys()):
        if key.startswith("CRPIX1"):
            out[key] = float(out[key]) - x0
        elif key.startswith("CRPIX2"):
            out[key] = float(out[key]) - y0
    if x0 or y0 or "LTV1" in out:
        out["LTV1"] = (float(out.get("LTV1", 0.0)) - x0, "physical to image offset, x")
        out["LTV2"] = (float(out.get("LTV2", 0.0)) - y0, "physical to image offset, y")
        out.setdefault("LTM1_1", 1.0)
        out.setdefault("LTM2_2", 1.0)
    for key in RAW_SECTION_KEYWORDS:
        out.remove(key, ignore_missing=True, remove_all=True)
    return out
