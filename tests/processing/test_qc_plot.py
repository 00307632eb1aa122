"""The night's image-quality picture: a PNG of the promised size, failed frames in red."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from astroflow.processing.qc_plot import TrendPoint, night_trend_png

RED = np.array([0xC0, 0x39, 0x2B])


def _red_pixels(png: bytes) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(np.count_nonzero(np.abs(pixels - RED).sum(axis=2) < 30))


@pytest.mark.parametrize("failed", [False, True], ids=["all-passed", "one-failed"])
def test_a_night_is_drawn_with_its_failed_frames_in_red(failed: bool) -> None:
    points = [
        TrendPoint(61100.05 + 0.02 * i, 2.5 + 0.1 * i, 300.0 + 5 * i, failed=failed and i == 3)
        for i in range(8)
    ]
    points.append(TrendPoint(61100.3, None, 320.0))  # no stars fitted: sky only
    png = night_trend_png("2026-03-01", points, (0.8, 10.0), "electron")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (640, 360)
    assert (_red_pixels(png) > 20) == failed


def test_an_empty_night_still_draws() -> None:
    assert night_trend_png("2026-03-01", []).startswith(b"\x89PNG")
