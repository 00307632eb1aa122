"""The astrometric solution of a reduced frame: what to tell the solver, how good its answer
is, and the frame's header with it.

Pixel positions are 0-based (astropy's); sky positions in degrees (ICRS). The solver itself
(astrometry.net) is run by :mod:`astroflow.storage.astrometry`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from astroflow.models.rules import Solve
from astroflow.processing.wcs import pixel_scale_arcsec

#: Header keywords of a celestial WCS (primary, and alternates ``A``-``Z``), removed before
#: the solution is written so that none of the old one survives beside it.
_WCS_KEY = re.compile(
    r"^(WCSAXES|CTYPE\d|CUNIT\d|CRVAL\d|CRPIX\d|CDELT\d|CROTA\d|CD\d_\d|PC\d_\d|PV\d_\d+|"
    r"PS\d_\d+|LONPOLE|LATPOLE|RADESYS|EQUINOX|EPOCH|WCSNAME|MJDREF|"
    r"[AB]P?_ORDER|[AB]P?_\d+_\d+|A_DMAX|B_DMAX)[A-Z]?$"
)


def solve_hint(header: Any, width: int, height: int, options: Solve) -> dict[str, float | None]:
    """Where to search (the ``SolveHint`` fields): the centre of the header's celestial WCS
    within ``options.radius_deg``, and its pixel scale within ``options.scale_tolerance``;
    None for what the header does not say (a blind solve)."""
    out: dict[str, float | None] = {
        "ra": None,
        "dec": None,
        "radius": options.radius_deg,
        "scale_low": None,
        "scale_high": None,
    }
    scale = pixel_scale_arcsec(header)
    if scale is None:
        return out
    out["scale_low"] = scale * (1 - options.scale_tolerance)
    out["scale_high"] = scale * (1 + options.scale_tolerance)
    try:
        wcs = header_wcs(header)
        ra, dec = wcs.all_pix2world([(width - 1) / 2.0], [(height - 1) / 2.0], 0)
    except Exception:  # an unusable WCS: scale only
        return out
    if np.isfinite(ra[0]) and np.isfinite(dec[0]):
        out["ra"], out["dec"] = float(ra[0]) % 360.0, float(dec[0])
    return out


def header_wcs(header: Any) -> Any:
    """The celestial astropy WCS of a header (quietly: odd keywords warn)."""
    import warnings

    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(header).celestial


def solution_wcs(solved: Any, sip_order: int) -> Any:
    """The solver's WCS header as an astropy WCS: TAN (its SIP terms, zero for a linear
    solution, dropped) unless ``sip_order`` asks for TAN-SIP."""
    wcs = header_wcs(solved)
    if sip_order < 2:
        wcs.sip = None
        wcs.wcs.ctype = [c.replace("-SIP", "") for c in wcs.wcs.ctype]
    return wcs


def astrometric_rms(wcs: Any, field_xy: np.ndarray, index_radec: np.ndarray) -> float:
    """Root-mean-square distance (arcsec) between the matched sources placed by ``wcs`` and
    their index stars."""
    from astropy.coordinates import SkyCoord

    if len(field_xy) == 0:
        return float("nan")
    ra, dec = wcs.all_pix2world(field_xy[:, 0], field_xy[:, 1], 0)
    placed = SkyCoord(ra, dec, unit="deg")
    stars = SkyCoord(index_radec[:, 0], index_radec[:, 1], unit="deg")
    separation = placed.separation(stars).arcsec
    return float(np.sqrt(np.mean(separation**2)))


def with_solution(header: Any, wcs: Any, cards: dict[str, tuple[Any, str]]) -> Any:
    """A copy of ``header`` whose celestial WCS is ``wcs`` (every keyword of the old one
    removed first) with ``cards`` (the solution's provenance) added."""
    out = header.copy()
    for key in [k for k in out if _WCS_KEY.match(k)]:
        out.remove(key, ignore_missing=True, remove_all=True)
    sip = wcs.sip is not None
    solved = wcs.to_header(relax=sip)
    for key in solved:
        if key in ("DATE-OBS", "MJD-OBS", "DATEREF", "MJDREFI", "MJDREFF", "TIMESYS"):
            continue  # the frame's own times stay as they were
        out[key] = (solved[key], solved.comments[key])
    for key, value in cards.items():
        out[key] = value
    return out
