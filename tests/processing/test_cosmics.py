"""Cosmic rays: seeded frames with single-pixel hits and tracks, on sky and on stars; the
mask is astroscrappy's own for the same parameters."""

from __future__ import annotations

import numpy as np
import pytest

from astroflow.models.rules import CosmicRays
from astroflow.processing.cosmics import detect_cosmic_rays


def _stars(shape: tuple[int, int], rng: np.random.Generator, n: int, fwhm: float) -> tuple:
    """Moffat stars (beta 3) of a given FWHM, point-sampled; their centres."""
    beta = 3.0
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.zeros(shape)
    ys, xs = rng.uniform(20, shape[0] - 20, n), rng.uniform(20, shape[1] - 20, n)
    for y, x in zip(ys, xs, strict=True):
        flux = rng.uniform(2e4, 2e5)
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        image += flux * (beta - 1) / (np.pi * alpha**2) * (1 + r2 / alpha**2) ** (-beta)
    return image, np.rint(ys).astype(int), np.rint(xs).astype(int)


@pytest.fixture
def hit_frame(rng: np.random.Generator) -> dict:
    """400x400 e-: sky 300 e-, read noise 5 e-, 40 stars of FWHM 3.5 px, 80 single-pixel hits
    and 25 tracks of 3-6 pixels (some on stars' wings)."""
    shape = (400, 400)
    stars, ys, xs = _stars(shape, rng, 40, 3.5)
    truth = np.zeros(shape, bool)
    for _ in range(80):
        truth[rng.integers(2, 398), rng.integers(2, 398)] = True
    for k in range(25):
        if k < 8:  # on a star's wing, 4 px from its centre
            y, x = ys[k] + 4, xs[k] + 4
        else:
            y, x = rng.integers(10, 390), rng.integers(10, 390)
        dy, dx = (1, 1) if k % 2 else (0, 1)
        for step in range(rng.integers(3, 7)):
            truth[y + dy * step, x + dx * step] = True
    clean = 300.0 + stars
    signal = rng.poisson(clean).astype(np.float64) + rng.normal(0, 5.0, shape)
    frame = signal + truth * rng.uniform(800, 5000, shape)
    return {"frame": frame.astype(np.float32), "truth": truth, "cores": (ys, xs)}


def test_hits_are_flagged_and_stars_are_not(hit_frame: dict) -> None:
    rules = CosmicRays()
    masked = np.zeros(hit_frame["frame"].shape, bool)
    hits, cleaned = detect_cosmic_rays(
        hit_frame["frame"], masked, gain=1.0, read_noise=5.0, saturation=np.inf, rules=rules
    )
    truth = hit_frame["truth"]
    assert cleaned is None  # flagged only, unless the rules ask
    found = np.count_nonzero(hits & truth) / np.count_nonzero(truth)
    false = np.count_nonzero(hits & ~truth) / np.count_nonzero(~truth)
    assert found >= 0.95, found
    assert false < 0.001, false
    ys, xs = hit_frame["cores"]
    assert not hits[ys, xs].any()  # no star core
    # the mask is astroscrappy's own for the same inputs and parameters
    import astroscrappy

    direct, _ = astroscrappy.detect_cosmics(
        hit_frame["frame"],
        inmask=masked,
        gain=1.0,
        readnoise=5.0,
        satlevel=1e30,
        sigclip=rules.sigclip,
        sigfrac=rules.sigfrac,
        objlim=rules.objlim,
        niter=rules.niter,
        sepmed=True,
        cleantype="meanmask",
        verbose=False,
    )
    np.testing.assert_array_equal(hits, direct)


def test_clean_replaces_only_the_hits(hit_frame: dict) -> None:
    frame = hit_frame["frame"]
    hits, cleaned = detect_cosmic_rays(
        frame,
        np.zeros(frame.shape, bool),
        gain=1.0,
        read_noise=5.0,
        saturation=np.inf,
        rules=CosmicRays(clean=True),
    )
    assert cleaned is not None
    np.testing.assert_array_equal(cleaned[~hits], frame[~hits])
    assert np.median(cleaned[hits & hit_frame["truth"]]) < 600  # back near the sky
