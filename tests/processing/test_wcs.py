"""WTML placement from WCS, checked against wwt_data_formats and by independent geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from wwt_data_formats.enums import ProjectionType
from wwt_data_formats.imageset import ImageSet
from wwt_data_formats.place import Place

from astroflow.models.errors import WcsError
from astroflow.processing.wcs import (
    avm_to_header,
    header_from_wcs,
    orient_top_down,
    pixel_to_sky,
    placement,
    study_geometry,
    tan_pixel_to_sky,
)
from tests.imagedata import tan_wcs

CASES = [
    pytest.param(601, 401, 0.0, True, id="odd-size"),
    pytest.param(1000, 700, 33.0, True, id="rotated"),
    pytest.param(1000, 700, -120.0, True, id="rotated-negative"),
    pytest.param(640, 480, 15.0, False, id="mirror-parity"),
    pytest.param(200, 150, 10.0, True, id="small-200px"),
    pytest.param(5000, 3000, 5.0, True, id="large-5000x3000"),
]


def _peer(header: dict, width: int, height: int) -> tuple[ImageSet, Place]:
    """What wwt_data_formats (toasty's WTML code) computes for the same header."""
    imgset = ImageSet()
    imgset.tile_levels = max(study_geometry(width, height)[1], 1)  # force its tiled branch
    place = Place()
    imgset.set_position_from_wcs(header, width, height, place=place)
    return imgset, place


@pytest.mark.parametrize(("w", "h", "rot", "east_left"), CASES)
def test_placement_matches_wwt_data_formats_and_geometry(
    w: int, h: int, rot: float, east_left: bool
) -> None:
    fits_wcs = tan_wcs(w, h, rotation_deg=rot, scale_deg=2e-4, east_left=east_left)
    header, flipped = orient_top_down(header_from_wcs(fits_wcs), h)
    assert flipped is east_left  # usual sky orientation is bottom-up in FITS: flip the rows
    got = placement(header, w, h)
    _, levels, _, _ = study_geometry(w, h)
    assert got.tile_levels == levels
    imgset, place = _peer(header, w, h)
    assert imgset.projection == ProjectionType.TAN
    assert got.center_x == pytest.approx(imgset.center_x)
    assert got.center_y == pytest.approx(imgset.center_y)
    assert got.rotation_deg == pytest.approx(imgset.rotation_deg)
    assert got.offset_x == pytest.approx(imgset.offset_x)
    assert got.offset_y == pytest.approx(imgset.offset_y)
    assert got.ra_hours == pytest.approx(place.ra_hr)
    assert got.dec_deg == pytest.approx(place.dec_deg)
    assert got.zoom_level == pytest.approx(place.zoom_level)
    # Independent geometry: CRVAL, scale, and the true centre of the *original* FITS image
    # (the centre pixel is the same whichever way the rows run).
    assert (got.center_x, got.center_y) == pytest.approx(tuple(fits_wcs.wcs.crval))
    assert got.base_degrees_per_tile == pytest.approx(2e-4 * 256 * 2**levels)
    centre = fits_wcs.pixel_to_world_values((w - 1) / 2, (h - 1) / 2)
    assert got.ra_hours * 15 == pytest.approx(float(centre[0]), abs=1e-9)
    assert got.dec_deg == pytest.approx(float(centre[1]), abs=1e-9)
    assert got.zoom_level == pytest.approx(h * 2e-4 * 1.7 * 6)


def test_zero_rotation_values_by_hand() -> None:
    w, h = 601, 401
    fits_wcs = tan_wcs(w, h, scale_deg=1e-4, crpix=(100.0, 50.0))
    header, _ = orient_top_down(header_from_wcs(fits_wcs), h)
    got = placement(header, w, h)
    assert got.rotation_deg == pytest.approx(0.0, abs=1e-9)
    # top-down CRPIX2 = h + 1 - 50
    assert got.offset_x == pytest.approx(((w + 1) // 2 - 99.5) * 1e-4)
    assert got.offset_y == pytest.approx(((h + 1 - 50) - 0.5 - (h + 1) // 2) * 1e-4)


TAN_HEADERS = {
    # CRVAL1, CRVAL2, scale (deg/px), rotation (deg), parity (+1 top-down, -1 FITS-like)
    "orion": (83.8, -5.4, 1e-4, 0.0, 1),
    "rotated": (210.0, 54.3, 3e-4, 33.0, 1),
    "fits-parity": (10.0, 41.2, 2e-4, -120.0, -1),
    "ra-wrap": (359.99, 12.0, 5e-4, 71.0, 1),
    "near-north-pole": (123.0, 89.95, 1e-3, 10.0, 1),
    "north-pole": (40.0, 90.0, 1e-3, 0.0, 1),
    "near-south-pole": (300.0, -89.9, 2e-3, -45.0, -1),
    "wide-field": (150.0, -30.0, 0.02, 15.0, 1),  # 40 deg across: far from the tangent point
}


@pytest.mark.parametrize(
    ("ra0", "dec0", "scale", "rot", "parity"), TAN_HEADERS.values(), ids=TAN_HEADERS.keys()
)
def test_tan_pixel_to_sky_is_astropys(
    ra0: float, dec0: float, scale: float, rot: float, parity: int, rng: np.random.Generator
) -> None:
    """The gnomonic formulas give wcslib's numbers for any pixel, near the poles and across
    RA 0 too."""
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    header = {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRVAL1": ra0,
        "CRVAL2": dec0,
        "CRPIX1": 1000.5,
        "CRPIX2": 700.25,
        "CD1_1": -scale * c,
        "CD1_2": parity * scale * s,
        "CD2_1": -scale * s,
        "CD2_2": -parity * scale * c,
    }
    x = np.concatenate([[999.5, 0.0, 1999.0], rng.uniform(0, 2000, 200)])
    y = np.concatenate([[699.25, 1399.0, 0.0], rng.uniform(0, 1400, 200)])
    ra, dec = tan_pixel_to_sky(header, x, y)
    ra_ref, dec_ref = pixel_to_sky(header, x, y)  # astropy
    np.testing.assert_allclose(dec, dec_ref, rtol=0, atol=1e-10)
    # RA compared as an angle on the sky (it wraps at 0/360 and spins at the poles)
    gap = (ra - ra_ref + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(gap * np.cos(np.radians(dec_ref)), 0.0, atol=1e-10)
    assert ((ra >= 0) & (ra < 360)).all()
    one = tan_pixel_to_sky(header, 999.5, 699.25)  # scalars in, scalars out
    assert float(one[0]) == pytest.approx(ra0 % 360, abs=1e-9)
    assert float(one[1]) == pytest.approx(dec0, abs=1e-9)


def test_rows_flip_keeps_sky_positions() -> None:
    w, h = 300, 200
    fits_wcs = tan_wcs(w, h, rotation_deg=20)
    top_down, flipped = orient_top_down(header_from_wcs(fits_wcs), h)
    assert flipped
    # Pixel row r of the flipped array is row h-1-r of the FITS array.
    x = np.array([0.0, 10.0, 299.0])
    r = np.array([0.0, 57.0, 199.0])
    ra1, dec1 = pixel_to_sky(top_down, x, r)
    ra0, dec0 = fits_wcs.pixel_to_world_values(x, h - 1 - r)
    np.testing.assert_allclose(ra1, ra0, atol=1e-10)
    np.testing.assert_allclose(dec1, dec0, atol=1e-10)


def _avm_fields(fits_wcs, w: int, h: int) -> dict:
    from pyavm import AVM

    avm = AVM.from_wcs(fits_wcs, shape=(h, w))
    return {
        "wcs_projection": "TAN",
        "wcs_reference_value": [float(v) for v in avm.Spatial.ReferenceValue],
        "wcs_reference_pixel": [float(v) for v in avm.Spatial.ReferencePixel],
        "wcs_reference_dimension": [float(v) for v in avm.Spatial.ReferenceDimension],
        "wcs_scale": [float(v) for v in avm.Spatial.Scale],
        "wcs_rotation": float(avm.Spatial.Rotation),
    }


@pytest.mark.parametrize("factor", [1.0, 0.5], ids=["same-size", "half-size-download"])
def test_astropix_fields_describe_the_picture_top_down(factor: float) -> None:
    w, h = 800, 600
    fits_wcs = tan_wcs(w, h, rotation_deg=25.0)
    avm = _avm_fields(fits_wcs, w, h)
    dw, dh = int(w * factor), int(h * factor)
    header = avm_to_header(avm, dw, dh)
    # Picture pixel (x, row) from the top <-> FITS pixel ((x+0.5)/f - 0.5, h-1-...) of the
    # reference image.
    xs = np.array([0.0, dw / 3, dw - 1.0])
    rows = np.array([0.0, dh / 2, dh - 1.0])
    ra, dec = pixel_to_sky(header, xs, rows)
    fx = (xs + 0.5) / factor - 0.5
    fy = (h - 1) - ((rows + 0.5) / factor - 0.5)
    ra0, dec0 = fits_wcs.pixel_to_world_values(fx, fy)
    np.testing.assert_allclose(ra, ra0, atol=1e-7)
    np.testing.assert_allclose(dec, dec0, atol=1e-7)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"wcs_projection": "SIN"}, "not TAN"),
        ({"wcs_scale": "abc"}, "wcs_scale"),
        ({"wcs_reference_dimension": [0, 10]}, "degenerate"),
        ({"wcs_rotation": None}, "wcs_rotation"),
    ],
    ids=["sin", "bad-scale", "zero-dimension", "no-rotation"],
)
def test_bad_avm_fields(change: dict, match: str) -> None:
    avm = _avm_fields(tan_wcs(100, 100), 100, 100) | change
    with pytest.raises(WcsError, match=match):
        avm_to_header(avm, 100, 100)


def _good_header() -> dict:
    return orient_top_down(header_from_wcs(tan_wcs(300, 300)), 300)[0]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"CTYPE1": "RA---SIN"}, "not TAN"),
        ({"CD1_1": -3e-4}, "not square"),
        ({"CD2_2": 1e-4}, "top-down"),
        ({"CD1_1": 0.0, "CD2_2": 0.0}, "singular"),
        ({"CRVAL2": 95.0}, "declination"),
        ({"CRPIX1": float("nan")}, "non-finite"),
    ],
    ids=["sin", "non-square", "bottom-up", "singular", "bad-dec", "nan"],
)
def test_placement_refuses_bad_headers(change: dict, match: str) -> None:
    with pytest.raises(WcsError, match=match):
        placement(_good_header() | change, 300, 300)


def test_header_from_wcs_refuses_non_celestial() -> None:
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    with pytest.raises(WcsError, match="equatorial"):
        header_from_wcs(w)
    assert math.isfinite(placement(_good_header(), 300, 300).zoom_level)
