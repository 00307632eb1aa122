"""The sigma-clipped mean against astropy's reference, value for value."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from astropy.stats import sigma_clip

from astroflow.processing.combine import BLOCK, clipped_mean, row_chunks, sorting_network


def _reference(cube: np.ndarray, sigma: float = 3.0, maxiters: int = 3) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sigma_clip(
            cube, sigma=sigma, maxiters=maxiters, cenfunc="median", stdfunc="mad_std", axis=0
        ).mean(axis=0)
    return np.ma.filled(ref.astype(np.float64), np.nan)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 10, 30, 31], ids=lambda n: f"n{n}")
def test_matches_astropy_sigma_clip(n: int, rng: np.random.Generator) -> None:
    cube = rng.normal(1000.0, 10.0, (n, 40, 50)).astype(np.float32)
    cube[0, :4] += 800.0  # cosmic rays
    if n > 1:
        cube[-1, 4:8] -= 400.0  # dead columns in one frame
    cube[:, 8:10] = 7.0  # constant pixels: zero spread
    cube[0, 10:12, :5] = np.nan  # masked values
    if n > 2:
        cube[:, 12, 0] = [100.0 + 1e3 * (i % 2) for i in range(n)]  # bimodal
    got, count = clipped_mean(cube)
    ref = _reference(cube)
    np.testing.assert_allclose(got, ref, rtol=1e-5, equal_nan=True)
    assert count.max() <= n


def test_all_nan_pixel_is_nan() -> None:
    cube = np.full((5, 2, 2), np.nan, np.float32)
    cube[:, 0, 0] = 1.0
    got, count = clipped_mean(cube)
    assert got[0, 0] == 1.0
    assert np.isnan(got[1, 1])
    assert count[1, 1] == 0


def test_outliers_are_rejected(rng: np.random.Generator) -> None:
    cube = rng.normal(0.0, 1.0, (20, 30, 30)).astype(np.float32)
    cube[3] += 1000.0
    got, count = clipped_mean(cube)
    assert np.abs(got).max() < 1.5
    assert (count <= 19).all()


def test_row_chunks_cover_and_respect_budget() -> None:
    chunks = row_chunks(4096, 30, 4096, budget_bytes=256 * 2**20)
    assert chunks[0][0] == 0
    assert chunks[-1][1] == 4096
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    assert all((r1 - r0) * 30 * 4096 * 4 <= 256 * 2**20 for r0, r1 in chunks)


@pytest.mark.parametrize("n", [2, 3, 7, 12, 16], ids=lambda n: f"n{n}")
def test_sorting_network_sorts_every_zero_one_input(n: int) -> None:
    # zero-one principle: a comparator network that sorts all 2^n 0/1 sequences sorts anything
    pairs = sorting_network(n)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    v = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).T.copy()
    for i, j in pairs:
        v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
    assert (np.diff(v, axis=0) >= 0).all()


@pytest.mark.parametrize("n", [30, 45, 64], ids=lambda n: f"n{n}")
def test_sorting_network_sorts_random_columns(n: int, rng: np.random.Generator) -> None:
    v = rng.normal(size=(n, 500))
    expected = np.sort(v, axis=0)
    for i, j in sorting_network(n):
        v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
    np.testing.assert_array_equal(v, expected)


@pytest.mark.parametrize(
    ("n", "dtype"),
    [(9, np.float32), (30, np.float32), (8, np.float64), (16, np.int16)],
    ids=["odd-f32", "n30-f32", "even-f64", "int16"],
)
def test_several_blocks_per_row_match_astropy(
    n: int, dtype: type, rng: np.random.Generator
) -> None:
    # rows wider than one vector block, with a partial last block; outliers in some pixels
    cols = 2 * BLOCK + 37
    cube = rng.normal(1000.0, 10.0, (n, 3, cols)).astype(dtype)
    cube[rng.integers(0, n, 40), rng.integers(0, 3, 40), rng.integers(0, cols, 40)] += 500
    got, count = clipped_mean(cube)
    np.testing.assert_allclose(got, _reference(cube), rtol=1e-6)
    assert ((count > 0) & (count <= n)).all()


def test_empty_stack_is_nan() -> None:
    got, count = clipped_mean(np.empty((0, 2, 3), np.float32))
    assert np.isnan(got).all()
    assert (count == 0).all()


@pytest.mark.parametrize(
    ("sigma", "maxiters"),
    [(3.0, 1), (2.0, 2), (2.5, 5), (1.5, 10)],
    ids=["3s-1it", "2s-2it", "2.5s-5it", "1.5s-10it"],
)
def test_other_sigmas_and_iteration_limits(
    sigma: float, maxiters: int, rng: np.random.Generator
) -> None:
    # heavy tails so that pixels need several iterations (the per-pixel path) or none
    cube = rng.standard_t(3, (21, 30, BLOCK + 11)).astype(np.float32) * 10 + 500
    got, _ = clipped_mean(cube, sigma=sigma, maxiters=maxiters)
    np.testing.assert_allclose(got, _reference(cube, sigma, maxiters), rtol=1e-6)
