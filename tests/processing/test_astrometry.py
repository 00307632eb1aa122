"""What the solver is told, and the header a solution leaves."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from astroflow.models.rules import Solve
from astroflow.processing.astrometry import astrometric_rms, solve_hint, with_solution


def _header(**extra: object) -> fits.Header:
    header = fits.Header()
    header.update(
        {
            "CTYPE1": "RA---TAN",
            "CTYPE2": "DEC--TAN",
            "CRVAL1": 10.0,
            "CRVAL2": -30.0,
            "CRPIX1": 50.5,
            "CRPIX2": 40.5,
            "CD1_1": -2e-4,
            "CD1_2": 0.0,
            "CD2_1": 0.0,
            "CD2_2": 2e-4,
            **extra,
        }
    )
    return header


def test_the_hint_is_the_header_centre_and_scale() -> None:
    hint = solve_hint(_header(), 100, 80, Solve(radius_deg=0.5, scale_tolerance=0.2))
    assert hint["ra"] == pytest.approx(10.0)
    assert hint["dec"] == pytest.approx(-30.0)
    assert hint["radius"] == 0.5
    assert hint["scale_low"] == pytest.approx(0.72 * 0.8)
    assert hint["scale_high"] == pytest.approx(0.72 * 1.2)


def test_a_header_without_wcs_asks_for_a_blind_solve() -> None:
    header = fits.Header({"EXPTIME": 30.0})
    hint = solve_hint(header, 100, 80, Solve())
    assert (hint["ra"], hint["dec"], hint["scale_low"], hint["scale_high"]) == (None,) * 4


def test_the_solution_replaces_every_keyword_of_the_old_wcs() -> None:
    old = _header(CTYPE1A="RA---TAN", CRVAL1A=1.0, A_ORDER=2, A_0_2=1e-6, PV2_1=0.0, EXPTIME=30.0)
    old["CTYPE1"], old["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    solved = WCS(naxis=2)
    solved.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    solved.wcs.crval = [10.01, -30.02]
    solved.wcs.crpix = [51.0, 41.0]
    solved.wcs.cd = [[-2.001e-4, 1e-6], [1e-6, 2.001e-4]]
    out = with_solution(old, solved, {"AF_WCSRC": ("astrometry", "where the WCS came from")})
    for gone in ("CTYPE1A", "CRVAL1A", "A_ORDER", "A_0_2", "PV2_1"):
        assert gone not in out, gone
    assert out["CTYPE1"] == "RA---TAN"
    assert out["CRVAL1"] == pytest.approx(10.01)
    assert out["EXPTIME"] == 30.0  # the rest of the header stays
    assert out["AF_WCSRC"] == "astrometry"
    np.testing.assert_allclose(WCS(out).wcs.crpix, [51.0, 41.0])


def test_rms_is_the_distance_of_matched_stars_in_arcsec() -> None:
    wcs = WCS(_header())
    xy = np.array([[10.0, 10.0], [60.0, 30.0], [90.0, 70.0]])
    ra, dec = wcs.all_pix2world(xy[:, 0], xy[:, 1], 0)
    shifted = np.column_stack([ra, dec + 0.5 / 3600])  # every star 0.5" north
    assert astrometric_rms(wcs, xy, shifted) == pytest.approx(0.5, rel=1e-3)
