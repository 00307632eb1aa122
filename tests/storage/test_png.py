"""The tile PNG encoder round-trips through Pillow, with the fewest channels that hold a tile."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from astroflow.storage.png import encode_png, encode_rgba


def _read(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("level", [0, 1, 3, 6], ids=["stored", "isal-1", "isal-3", "zlib-6"])
@pytest.mark.parametrize("strategy", ["rle", "default"])
@pytest.mark.parametrize("shape", [(256, 256), (1, 1), (3, 7)], ids=["tile", "one", "odd"])
def test_round_trip(
    rng: np.random.Generator, strategy: str, shape: tuple[int, int], level: int
) -> None:
    rgba = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    img = _read(encode_rgba(rgba, level, strategy))
    assert img.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(img), rgba)


MODES = {
    "grey-opaque": (2, True, "L"),
    "grey-alpha": (2, False, "LA"),
    "colour-opaque": (4, True, "RGB"),
    "colour-alpha": (4, False, "RGBA"),
}


@pytest.mark.parametrize(("channels", "opaque", "mode"), MODES.values(), ids=MODES.keys())
def test_tiles_keep_only_the_channels_they_need(
    rng: np.random.Generator, channels: int, opaque: bool, mode: str
) -> None:
    pixels = rng.integers(0, 256, (256, 256, channels), dtype=np.uint8)
    if opaque:
        pixels[..., -1] = 255
    else:
        pixels[:10, :, -1] = 0
    img = _read(encode_png(pixels))
    assert img.mode == mode
    want = pixels[..., :-1] if opaque else pixels
    got = np.asarray(img)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    # what a browser shows: the same RGBA either way
    full = (
        pixels if channels == 4 else np.concatenate([pixels[..., :1]] * 3 + [pixels[..., 1:]], -1)
    )
    np.testing.assert_array_equal(np.asarray(img.convert("RGBA")), full)


def test_refuses_what_is_not_an_image() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_rgba(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4, 5), np.uint8))
