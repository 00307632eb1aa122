"""Calibration maths and QC gates."""

from __future__ import annotations

import numpy as np
import pytest

from astroflow.models.errors import CalibrationError
from astroflow.processing.calibration import (
    MASK_BAD,
    MASK_SATURATED,
    dark_rate,
    flat_normalised,
    qc_failures,
    read_noise_difference,
    reduce_frame,
)


def test_reduce_frame_arithmetic() -> None:
    raw = np.array([[1100.0, 70000.0], [1050.0, 1200.0]], np.float32)
    bias = np.full((2, 2), 1000.0)
    dark = np.full((2, 2), 0.5)
    flat = np.array([[1.0, 1.0], [0.4, 2.0]])
    sci, var, mask = reduce_frame(raw, bias, dark, flat, exptime=20.0, gain=2.0, read_noise=5.0)
    assert sci[0, 0] == pytest.approx(90.0)  # 1100 - 1000 - 10
    assert sci[1, 1] == pytest.approx(95.0)  # (1200 - 1010) / 2
    assert var[0, 0] == pytest.approx(90.0 / 2.0 + 25.0)
    assert var[1, 1] == pytest.approx((190.0 / 2.0 + 25.0) / 4.0)
    assert mask[0, 1] & MASK_SATURATED
    assert mask[1, 0] & MASK_BAD  # flat 0.4 <= 0.5
    assert mask[0, 0] == 0


def test_dark_and_flat_helpers() -> None:
    raw = np.full((4, 4), 1060.0, np.float32)
    bias = np.full((4, 4), 1000.0)
    np.testing.assert_allclose(dark_rate(raw, bias, 120.0), 0.5)
    with pytest.raises(CalibrationError, match="not positive"):
        dark_rate(raw, bias, 0.0)
    flat = flat_normalised(raw * 10, bias, np.zeros((4, 4)), 1.0)
    np.testing.assert_allclose(flat, 1.0)
    with pytest.raises(CalibrationError, match="flat level"):
        flat_normalised(raw, bias * 2, np.zeros((4, 4)), 1.0)


def test_read_noise_difference(rng: np.random.Generator) -> None:
    a = 1000 + rng.normal(0, 8.0, (200, 200))
    b = 1000 + rng.normal(0, 8.0, (200, 200))
    assert read_noise_difference(a, b) == pytest.approx(8.0, rel=0.03)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0.9, True),
        (1.1, True),
        (1.0, True),
        (0.8999999, False),
        (1.1000001, False),
        (float("nan"), False),
    ],
    ids=["low-bound", "high-bound", "inside", "below", "above", "nan"],
)
def test_qc_bounds_are_inclusive(value: float, ok: bool) -> None:
    failures = qc_failures({"mean": value, "other": 5.0}, {"mean": (0.9, 1.1), "absent": (0, 1)})
    assert (failures == []) is ok


def reduce_frame_numpy(
    raw: np.ndarray,
    bias: np.ndarray,
    dark: np.ndarray,
    flat: np.ndarray,
    exptime: float,
    gain: float,
    read_noise: float,
    saturation: float = 65000.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reduction in plain numpy arrays (astroflow's before its kernel): the reference."""
    rawd = raw.astype(np.float64)
    signal = rawd - bias - dark * exptime
    bad_cal = ~np.isfinite(flat) | (flat <= 0.5) | ~np.isfinite(bias) | ~np.isfinite(dark)
    safe_flat = np.where(bad_cal, 1.0, flat)
    science = signal / safe_flat
    variance = (np.clip(signal, 0, None) / gain + read_noise**2) / safe_flat**2
    mask = np.zeros(raw.shape, np.uint8)
    mask[bad_cal] |= 1
    mask[rawd >= saturation] |= 2
    mask[~np.isfinite(rawd)] |= 4
    return science.astype(np.float32), variance.astype(np.float32), mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_the_reduce_kernel_equals_the_numpy_reference(dtype: type) -> None:
    from astroflow.processing.calibration import reduce_frame

    rng = np.random.default_rng(5)
    shape = (37, 53)
    raw = rng.normal(1500.0, 40.0, shape).astype(dtype)
    raw[3, 4] = np.nan
    raw[5, 6] = 70000.0  # saturated
    raw[7, :] = 900.0  # below the bias and dark: negative signal
    bias = rng.normal(1000.0, 2.0, shape)
    bias[8, 9] = np.nan
    dark = rng.normal(0.5, 0.05, shape)
    dark[10, 11] = np.inf
    flat = rng.normal(1.0, 0.02, shape)
    flat[12, 13] = 0.3  # dead
    flat[14, 15] = np.nan
    got = reduce_frame(raw, bias, dark, flat, 60.0, 1.7, 5.0, 65000.0)
    want = reduce_frame_numpy(raw, bias, dark, flat, 60.0, 1.7, 5.0, 65000.0)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)  # bit for bit, NaNs where numpy has them
