"""The celestial WCS of a FITS header.

Most images ingested carry their WCS in one of the FITS standard's plain forms, and
:func:`plain_tan_header` reads those straight from the cards. Importing ``astropy.wcs`` costs
half a second (``astropy.coordinates`` comes with it; a fifth of a one-image FITS job and its
interpreter's exit), so it is imported only for the headers that need wcslib: projection
parameters, distortions, mixed or non-standard forms. Both give the same numbers (tested).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from typing import Any

from astroflow.models.errors import WcsError, one_line

# The primary WCS keywords that plain_tan_header understands; any other keyword of the WCS
# standard or its conventions (PVi_m, PSi_m, SIP's A_/B_, distortion tables, a third axis)
# sends the header to astropy.
_PLAIN_KEYS = frozenset(
    ["CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CROTA2"]
    + [f"{kind}{i}_{j}" for kind in ("CD", "PC") for i in (1, 2) for j in (1, 2)]
    + ["CUNIT1", "CUNIT2", "CRDER1", "CRDER2", "CSYER1", "CSYER2"]
    + ["WCSAXES", "RADESYS", "EQUINOX", "EPOCH", "WCSNAME", "LONPOLE", "LATPOLE"]
)
_OTHER_WCS_KEY = re.compile(
    r"(CTYPE|CRVAL|CRPIX|CDELT|CROTA|CUNIT|CRDER|CSYER|PC|CD|PV|PS)\d|LONPOLE|LATPOLE|"
    r"[AB]P?_|CPDIS|CPERR|CQDIS|DP\d|DQ\d|D2IM"
)


def plain_tan_header(cards: Mapping[str, Any]) -> dict[str, Any] | None:
    """The plain CD-matrix header (as ``processing.wcs.header_from_wcs`` makes) of a FITS
    header whose primary WCS is an equatorial TAN projection written in one of the standard's
    plain forms, read without astropy; None for anything else, which astropy then reads.

    The plain forms: a CD matrix (``CDi_j``, missing entries 0); ``PCi_j`` (identity by
    default) times ``CDELTi``; ``CDELTi`` with AIPS's ``CROTA2``. ``CRVALn`` and ``CRPIXn``
    must be given, ``CUNITn`` be absent or ``deg`` and ``LONPOLE`` absent or its default
    (astropy writes it). Mixed forms, projection parameters, another ``LONPOLE``, SIP or other
    distortions, a third WCS axis or a non-standard ``CTYPE`` spelling are left to astropy
    (and wcslib's fixes), so that both give the same numbers (the tests compare them).
    """
    keys = {str(k).upper() for k in cards}
    if any(_OTHER_WCS_KEY.match(k) and k not in _PLAIN_KEYS for k in keys):
        return None
    if str(cards.get("CTYPE1", "")).strip() != "RA---TAN":
        return None
    if str(cards.get("CTYPE2", "")).strip() != "DEC--TAN":
        return None
    if any(str(cards.get(f"CUNIT{i}", "deg")).strip() != "deg" for i in (1, 2)):
        return None
    has_cd = any(k.startswith("CD") and k[2:3].isdigit() for k in keys)
    has_pc = any(k.startswith("PC") and k[2:3].isdigit() for k in keys)
    if (has_cd and (has_pc or "CROTA2" in keys)) or (has_pc and "CROTA2" in keys):
        return None  # mixed forms: wcslib's rules of precedence decide
    try:
        if int(cards.get("WCSAXES", 2)) != 2 or int(cards.get("NAXIS", 2)) != 2:
            return None
        values = {k: float(cards[k]) for k in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")}
        # LONPOLE only at its default for a zenithal projection (what astropy writes); the
        # projection fixes the pole's latitude, so LATPOLE changes nothing.
        if "LONPOLE" in keys and float(cards["LONPOLE"]) != (
            0.0 if values["CRVAL2"] >= 90.0 else 180.0
        ):
            return None
        if has_cd:
            cd = [float(cards.get(f"CD{i}_{j}", 0.0)) for i in (1, 2) for j in (1, 2)]
        else:
            c1, c2 = float(cards.get("CDELT1", 1.0)), float(cards.get("CDELT2", 1.0))
            if "CROTA2" in keys:  # AIPS: PC is the rotation, scaled so that CD is this
                rho = math.radians(float(cards["CROTA2"]))
                cos, sin = math.cos(rho), math.sin(rho)
                cd = [c1 * cos, -c2 * sin, c1 * sin, c2 * cos]
            else:
                pc = [
                    cards.get(f"PC{i}_{j}", 1.0 if i == j else 0.0) for i in (1, 2) for j in (1, 2)
                ]
                cd = [c1 * float(pc[0]), c1 * float(pc[1]), c2 * float(pc[2]), c2 * float(pc[3])]
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in [*values.values(), *cd]):
        return None
    if cd[0] * cd[3] - cd[1] * cd[2] == 0:
        return None  # singular: astropy says why
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        **values,
        "CD1_1": cd[0],
        "CD1_2": cd[1],
        "CD2_1": cd[2],
        "CD2_2": cd[3],
    }


def celestial_wcs(header: Any) -> Any | None:
    """The celestial WCS of a FITS header: a plain TAN header when
    :func:`plain_tan_header` reads it, else astropy's WCS (imported only then:
    it costs a tenth of a one-image job), None without celestial axes."""
    plain = plain_tan_header(header)
    if plain is not None:
        return plain
    from astropy.wcs import WCS, FITSFixedWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2)
    except Exception as exc:
        raise WcsError(f"unreadable WCS: {one_line(exc)}") from exc
    return wcs if wcs.has_celestial else None
