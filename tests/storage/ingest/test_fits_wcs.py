"""FITS header WCS: the plain forms read without astropy give wcslib's numbers; every other
form is left to astropy."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from astroflow.processing.wcs import header_from_wcs, pixel_to_sky, tan_pixel_to_sky
from astroflow.storage.ingest.fits_wcs import celestial_wcs, plain_tan_header

BASE = {
    "NAXIS": 2,
    "NAXIS1": 600,
    "NAXIS2": 400,
    "CTYPE1": "RA---TAN",
    "CTYPE2": "DEC--TAN",
    "CRVAL1": 83.8,
    "CRVAL2": -5.4,
    "CRPIX1": 300.5,
    "CRPIX2": 190.25,
}

PLAIN = {
    "cd": {"CD1_1": -2e-4, "CD1_2": 3e-5, "CD2_1": 2.9e-5, "CD2_2": 2e-4},
    "cd-diagonal-only": {"CD1_1": -2e-4, "CD2_2": 2e-4},
    "pc-cdelt": {"CDELT1": -1e-4, "CDELT2": 1e-4, "PC1_1": 0.8, "PC1_2": -0.6, "PC2_1": 0.6},
    "cdelt-only": {"CDELT1": -1e-4, "CDELT2": 1e-4},
    "crota": {"CDELT1": -1e-4, "CDELT2": 1.2e-4, "CROTA2": 33.0},
    "crota-90": {"CDELT1": -1e-4, "CDELT2": 1e-4, "CROTA2": 90.0},
    "crota-mirror": {"CDELT1": 1e-4, "CDELT2": 1e-4, "CROTA2": -135.0},
    "with-frame-and-units": {
        "CD1_1": -2e-4,
        "CD2_2": 2e-4,
        "CUNIT1": "deg",
        "CUNIT2": "deg",
        "RADESYS": "FK5",
        "EQUINOX": 2000.0,
        "WCSAXES": 2,
    },
    "ra-wrap": {"CRVAL1": 359.999, "CD1_1": -1e-3, "CD2_2": 1e-3},
    # what astropy's to_header writes: LONPOLE at its default, LATPOLE (no say for TAN)
    "astropy-written": {"CDELT1": -1e-4, "CDELT2": 1e-4, "LONPOLE": 180.0, "LATPOLE": -5.4},
    "latpole-elsewhere": {"CD1_1": -2e-4, "CD2_2": 2e-4, "LATPOLE": 37.0},
    "at-the-pole": {"CRVAL2": 90.0, "CD1_1": -2e-4, "CD2_2": 2e-4, "LONPOLE": 0.0},
}


def _header(extra: dict) -> fits.Header:
    header = fits.Header()
    for key, value in {**BASE, **extra}.items():
        header[key] = value
    return header


@pytest.mark.parametrize("extra", PLAIN.values(), ids=PLAIN.keys())
def test_plain_forms_give_astropys_numbers(extra: dict) -> None:
    header = _header(extra)
    ours = plain_tan_header(header)
    assert ours is not None
    theirs = header_from_wcs(WCS(header, naxis=2))
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, str):
            assert ours[key] == value
        else:
            assert ours[key] == pytest.approx(value, rel=1e-12, abs=1e-18), key
    x, y = np.array([0.0, 299.5, 599.0]), np.array([0.0, 189.25, 399.0])
    ra, dec = tan_pixel_to_sky(ours, x, y)
    ra0, dec0 = WCS(header, naxis=2).pixel_to_world_values(x, y)
    np.testing.assert_allclose(dec, dec0, atol=1e-10)
    gap = (ra - ra0 + 180) % 360 - 180  # as an angle on the sky: none at the pole itself
    np.testing.assert_allclose(gap * np.cos(np.radians(dec0)), 0.0, atol=1e-10)


ASTROPYS = {
    # forms whose meaning wcslib decides (conventions, precedence, fixes)
    "sip": {"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "A_ORDER": 2, "B_ORDER": 2},
    "sip-terms-on-plain-tan": {"CD1_1": -2e-4, "CD2_2": 2e-4, "A_ORDER": 2, "A_2_0": 1e-6},
    "projection-parameter": {"CD1_1": -2e-4, "CD2_2": 2e-4, "PV2_1": 0.01},
    "lonpole": {"CD1_1": -2e-4, "CD2_2": 2e-4, "LONPOLE": 170.0},
    "cd-and-pc": {"CD1_1": -2e-4, "CD2_2": 2e-4, "PC1_1": 1.0, "CDELT1": -1e-4},
    "pc-and-crota": {"CDELT1": -1e-4, "CDELT2": 1e-4, "PC1_1": 1.0, "CROTA2": 10.0},
    "arcsec-units": {"CDELT1": -0.36, "CDELT2": 0.36, "CUNIT1": "arcsec", "CUNIT2": "arcsec"},
    "misspelt-ctype": {"CTYPE1": "RA--TAN", "CD1_1": -2e-4, "CD2_2": 2e-4},
    "third-axis": {"CD1_1": -2e-4, "CD2_2": 2e-4, "WCSAXES": 3, "CTYPE3": "FREQ"},
    "alternate-wcs": {"CD1_1": -2e-4, "CD2_2": 2e-4, "CTYPE1A": "LINEAR"},
    "zero-scale": {"CDELT1": 0.0, "CDELT2": 1e-4},
    "galactic": {"CTYPE1": "GLON-TAN", "CTYPE2": "GLAT-TAN", "CD1_1": -2e-4, "CD2_2": 2e-4},
    "no-wcs": {"CTYPE1": None, "CTYPE2": None},
}


@pytest.mark.parametrize("extra", ASTROPYS.values(), ids=ASTROPYS.keys())
def test_other_forms_are_left_to_astropy(extra: dict) -> None:
    header = _header({k: v for k, v in extra.items() if v is not None})
    for key in [k for k, v in extra.items() if v is None]:
        del header[key]
    assert plain_tan_header(header) is None


def test_what_astropy_writes_is_read_plainly() -> None:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [210.0, 54.3]
    w.wcs.crpix = [100.0, 80.0]
    w.wcs.cd = [[-1e-4, 2e-5], [2e-5, 1e-4]]
    assert plain_tan_header(w.to_header()) is not None


def test_celestial_wcs_reads_plain_forms_itself_and_asks_astropy_otherwise() -> None:
    assert isinstance(celestial_wcs(_header(PLAIN["cd"])), dict)
    lonpole = celestial_wcs(_header(ASTROPYS["lonpole"]))
    assert isinstance(lonpole, WCS)
    assert lonpole.wcs.lonpole == 170.0
    no_wcs = _header({})
    for key in ("CTYPE1", "CTYPE2"):
        del no_wcs[key]
    assert celestial_wcs(no_wcs) is None


def test_a_plain_fits_image_is_read_without_importing_astropy_wcs(tmp_path: Path) -> None:
    """The speed of a one-image FITS job depends on it (storage/fits_wcs.py)."""
    path = tmp_path / "plain.fits"
    header = _header(PLAIN["crota"])
    fits.PrimaryHDU(np.zeros((400, 600), np.float32), header).writeto(path)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from astroflow.storage.ingest.images import read_fits\n"
        f"loaded = read_fits(Path({str(path)!r}))\n"
        "assert isinstance(loaded.wcs, dict), loaded.wcs\n"
        "assert 'astropy.wcs' not in sys.modules\n"
        "loaded.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_crota_is_a_rotation_of_the_sky() -> None:
    """AIPS's convention written out (Calabretta & Greisen 2002, eq. 188), not taken from
    wcslib: CD = [[CDELT1 cos, -CDELT2 sin], [CDELT1 sin, CDELT2 cos]]."""
    header = plain_tan_header(_header(PLAIN["crota-90"]))
    assert header is not None
    assert header["CD1_1"] == pytest.approx(0.0, abs=1e-18)
    assert header["CD1_2"] == pytest.approx(-1e-4)
    assert header["CD2_1"] == pytest.approx(-1e-4)
    assert math.isclose(header["CD2_2"], 0.0, abs_tol=1e-18)
    ra, dec = tan_pixel_to_sky(header, 299.5, 189.25)
    assert (float(ra), float(dec)) == pytest.approx((83.8, -5.4))
    assert pixel_to_sky(header, 299.5, 189.25)[1] == pytest.approx(-5.4)
