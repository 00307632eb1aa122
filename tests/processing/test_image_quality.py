"""Image quality with sep: Moffat stars of known FWHM measured within 5 %, defocused and
trailed frames told apart, the sky."""

from __future__ import annotations

import numpy as np
import pytest

from astroflow.processing.image_quality import image_quality, moffat_fwhm


def _field(
    rng: np.random.Generator, fwhm: float, *, trail: float = 0.0, n: int = 40, beta: float = 3.0
) -> np.ndarray:
    """A 500x500 frame in electrons: sky 200 e-, Moffat stars of ``fwhm`` px (smeared along x
    over ``trail`` px), Poisson and read noise."""
    shape = (500, 500)
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.full(shape, 200.0)
    for _ in range(n):
        y, x = rng.uniform(30, 470), rng.uniform(30, 470)
        flux = rng.uniform(3e4, 3e5)
        steps = np.linspace(-trail / 2, trail / 2, 9) if trail else [0.0]
        for dx in steps:
            r2 = (xx - x - dx) ** 2 + (yy - y) ** 2
            image += (
                flux / len(steps) * (beta - 1) / (np.pi * alpha**2) * (1 + r2 / alpha**2) ** -beta
            )
    return rng.poisson(image).astype(np.float64) + rng.normal(0, 5.0, shape)


@pytest.mark.parametrize("fwhm", [2.5, 4.0, 7.0], ids=["sharp", "seeing", "soft"])
def test_known_fwhm_is_measured_within_5_percent(rng: np.random.Generator, fwhm: float) -> None:
    qc = image_quality(_field(rng, fwhm), np.zeros((500, 500), bool), pixel_scale_arcsec=0.5)
    assert qc["fwhm"] == pytest.approx(fwhm, rel=0.05)
    assert qc["fwhm_arcsec"] == pytest.approx(qc["fwhm"] * 0.5)
    assert qc["ellipticity"] < 0.1
    assert 30 <= qc["sources"] <= 45
    assert qc["sky_median"] == pytest.approx(200.0, rel=0.02)
    assert qc["sky_noise"] == pytest.approx(np.sqrt(200 + 25), rel=0.1)


def test_defocused_and_trailed_frames_stand_out(rng: np.random.Generator) -> None:
    none = np.zeros((500, 500), bool)
    sharp = image_quality(_field(rng, 3.0), none)
    defocused = image_quality(_field(rng, 12.0), none)
    trailed = image_quality(_field(rng, 3.0, trail=10.0), none)
    assert defocused["fwhm"] > 3 * sharp["fwhm"]
    assert trailed["ellipticity"] > 0.4 > sharp["ellipticity"]


def test_a_starless_frame_has_no_fwhm(rng: np.random.Generator) -> None:
    qc = image_quality(200 + rng.normal(0, 5, (300, 300)), np.zeros((300, 300), bool))
    assert "fwhm" not in qc
    assert "ellipticity" not in qc
    assert qc["sources"] <= 2


def test_moffat_fwhm() -> None:
    assert moffat_fwhm(2.5, 3.0) == pytest.approx(2.549, rel=1e-3)
