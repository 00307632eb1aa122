"""astroflow's L.A.Cosmic against astroscrappy's ``detect_cosmics`` run directly: the same
mask and the same cleaned frame, bit for bit, whichever way each iteration is computed (the
whole frame, windows around the changed pixels, or nothing left to do)."""

from __future__ import annotations

from pathlib import Path

import astroscrappy
import numpy as np
import pytest

from astroflow.processing import lacosmic
from tests.real_frames import SAAO, ccdproc_data


def _frame(
    rng: np.random.Generator,
    shape: tuple[int, int],
    hits: int,
    *,
    saturated: bool = False,
    edge_hits: bool = False,
) -> np.ndarray:
    """Sky 300 e- with read noise 5 e-, 12 Gaussian stars (FWHM 3 px; with ``saturated``,
    some far above 60000 e-), ``hits`` cosmic rays (single pixels and tracks of 2-6 pixels),
    and with ``edge_hits`` some on the outermost rows and columns."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    light = np.full(shape, 300.0)
    sigma = 3.0 / 2.3548
    for k in range(12):
        y, x = rng.uniform(8, ny - 8), rng.uniform(8, nx - 8)
        flux = 5e6 if saturated and k < 4 else rng.uniform(2e3, 1e5)
        light += (
            flux / (2 * np.pi * sigma**2) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 2 / sigma**2)
        )
    frame = rng.poisson(light) + rng.normal(0.0, 5.0, shape)
    for _ in range(hits):
        y, x = int(rng.integers(0, ny - 6)), int(rng.integers(0, nx - 6))
        dy, dx = (0, 1) if rng.random() < 0.5 else (1, 0)
        for step in range(int(rng.integers(1, 7))):
            frame[y + dy * step, x + dx * step] += rng.uniform(500, 20000)
    if edge_hits:
        frame[0, 10:13] += 8000
        frame[ny - 1, nx // 2] += 6000
        frame[ny // 3, 0] += 7000
        frame[1, nx - 2] += 9000
    return frame.astype(np.float32)


CASES = {
    # id: (shape, hits, options, frame options, how the later iterations are computed)
    "sparse-hits": ((300, 340), 6, {}, {}, "windows"),
    "dense-hits": ((260, 300), 400, {}, {}, "whole"),
    "saturated-stars": ((300, 300), 30, {"satlevel": 60000.0}, {"saturated": True}, "windows"),
    "edge-hits": ((200, 230), 10, {}, {"edge_hits": True}, "windows"),
    "adu-with-gain": ((240, 260), 40, {"gain": 2.3, "readnoise": 7.0}, {}, "windows"),
    "one-iteration": ((200, 200), 40, {"niter": 1}, {}, None),
    "eight-iterations": ((220, 240), 60, {"niter": 8, "sigclip": 4.0}, {}, "windows"),
    "full-medians": ((200, 220), 40, {"sepmed": False}, {}, "windows"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_the_same_as_astroscrappy(
    case: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    shape, hits, options, frame_options, later = CASES[case]
    frame = _frame(rng, shape, hits, **frame_options)
    if options.get("gain"):
        frame = frame / np.float32(options["gain"])  # counts in ADU
    inmask = np.zeros(shape, bool)
    inmask[:, shape[1] // 3] = True  # a bad column
    params = {"gain": 1.0, "readnoise": 5.0, "satlevel": 1e30} | options
    seen: list[str] = []
    windows = lacosmic._windows

    def spy(*args):  # which way each later iteration goes
        boxes = windows(*args)
        seen.append("whole" if boxes is None else "windows")
        return boxes

    monkeypatch.setattr(lacosmic, "_windows", spy)
    mask, cleaned = lacosmic.detect_cosmics(frame, inmask, **params)
    direct_mask, direct_cleaned = astroscrappy.detect_cosmics(
        frame, inmask=inmask, cleantype="meanmask", fsmode="median", verbose=False, **params
    )
    assert direct_mask.sum() >= hits  # the frame has hits to find
    np.testing.assert_array_equal(mask, direct_mask)
    np.testing.assert_array_equal(cleaned, direct_cleaned)
    if later is None:
        assert seen == []
    else:
        assert later in seen, seen


def test_a_hit_without_good_neighbours_gets_the_background(rng: np.random.Generator) -> None:
    """A 3x3 splash (20000 e- at its centre, 3000 e- around) inside a masked ring: once it
    is all flagged its centre has no unflagged, unmasked neighbour left, so astroscrappy puts
    the frame's median there; so do we."""
    frame = _frame(rng, (120, 120), 0)
    inmask = np.zeros(frame.shape, bool)
    inmask[57:64, 57:64] = True
    inmask[58:63, 58:63] = False  # a ring 3 px from the centre, grown by one inside
    frame[59:62, 59:62] += 3000
    frame[60, 60] += 17000
    mask, cleaned = lacosmic.detect_cosmics(frame, inmask, readnoise=5.0, satlevel=1e30)
    direct_mask, direct_cleaned = astroscrappy.detect_cosmics(
        frame, inmask=inmask, readnoise=5.0, satlevel=1e30
    )
    assert direct_mask[59:62, 59:62].all()
    assert direct_cleaned[60, 60] == pytest.approx(np.median(frame[~inmask]), rel=1e-3)
    np.testing.assert_array_equal(mask, direct_mask)
    np.testing.assert_array_equal(cleaned, direct_cleaned)


def test_windows_hold_every_pixel_within_reach() -> None:
    ys, xs = np.array([0, 100, 100, 199]), np.array([0, 37, 45, 150])
    boxes = lacosmic._windows(ys, xs, (200, 160))
    covered = np.zeros((200, 160), bool)
    for y0, y1, x0, x1 in boxes:
        covered[y0:y1, x0:x1] = True
    for y, x in zip(ys, xs, strict=True):
        r = lacosmic.REACH
        assert covered[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1].all()
    assert covered.mean() < 0.3
    # changes everywhere: the whole frame is cheaper
    every = np.mgrid[0:200:12, 0:160:12].reshape(2, -1)
    assert lacosmic._windows(every[0], every[1], (200, 160)) is None


@pytest.mark.parametrize("shape", [(4, 4), (5, 9), (33, 17), (120, 131)], ids=str)
def test_the_numba_kernels_give_astroscrappys_numbers(
    shape: tuple[int, int], rng: np.random.Generator
) -> None:
    """The Laplacian and the 7x7 separable median, on values from 1e-3 to 1e5 of both signs
    (the Laplacian's sums are where a different order would show)."""
    x = (rng.normal(0, 1, shape) * 10.0 ** rng.integers(-3, 6, shape)).astype(np.float32)
    assert lacosmic._laplacian_matches()  # the fast path is the one this build uses
    np.testing.assert_array_equal(lacosmic._laplacian(x), lacosmic._laplacian_reference(x))
    np.testing.assert_array_equal(lacosmic._sepmedfilt7(x), astroscrappy.sepmedfilt7(x))
    x[1, 2] = np.nan  # not finite: astroscrappy's own median
    np.testing.assert_array_equal(lacosmic._sepmedfilt7(x), astroscrappy.sepmedfilt7(x))


def test_a_frame_with_non_finite_values_is_astroscrappys_own(rng: np.random.Generator) -> None:
    frame = _frame(rng, (150, 160), 20)
    frame[40, 50] = np.nan
    frame[90, 10] = np.inf
    mask, cleaned = lacosmic.detect_cosmics(frame, None, readnoise=5.0)
    direct_mask, direct_cleaned = astroscrappy.detect_cosmics(frame, readnoise=5.0)
    np.testing.assert_array_equal(mask, direct_mask)
    np.testing.assert_array_equal(cleaned, direct_cleaned)


def _real_frame(name: str) -> tuple[np.ndarray, dict]:
    """A real frame in counts and its camera: astroscrappy's own test frame (Gemini GMOS,
    the SCI extension) or ccdproc's raw SAAO 1.0 m frame, its TRIMSEC less the median of its
    BIASSEC."""
    from astropy.io import fits

    if name == "gmos":
        path = Path(astroscrappy.__file__).parent / "tests" / "data" / "gmos.fits"
        return fits.getdata(path, "SCI").astype(np.float32), {"readnoise": 3.5}
    raw = fits.getdata(ccdproc_data(SAAO)).astype(np.float32)
    bias = np.median(raw[:, 3:13])
    return raw[:, 16:528] - bias, {"gain": 1.9, "readnoise": 5.0, "satlevel": 60000.0 * 1.9}


@pytest.mark.parametrize("name", ["gmos", "saao-a8280271"])
def test_real_frames_give_astroscrappys_mask(name: str) -> None:
    frame, camera = _real_frame(name)
    mask, cleaned = lacosmic.detect_cosmics(frame, None, **camera)
    direct_mask, direct_cleaned = astroscrappy.detect_cosmics(frame, **camera)
    assert direct_mask.sum() > 100  # real hits
    np.testing.assert_array_equal(mask, direct_mask)
    np.testing.assert_array_equal(cleaned, direct_cleaned)
