"""The tile PNG encoder round-trips through Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from astroflow.storage.png import encode_rgba


@pytest.mark.parametrize("strategy", ["rle", "default"])
@pytest.mark.parametrize("shape", [(256, 256), (1, 1), (3, 7)], ids=["tile", "one", "odd"])
def test_round_trip(rng: np.random.Generator, strategy: str, shape: tuple[int, int]) -> None:
    rgba = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    with Image.open(io.BytesIO(encode_rgba(rgba, 1, strategy))) as img:
        img.load()
        assert img.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(img), rgba)


def test_refuses_non_rgba() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_rgba(np.zeros((4, 4, 3), np.uint8))
