"""The tiled-FITS pyramid against toasty's own merger and the PNG pyramid's geometry."""

from __future__ import annotations

import numpy as np
import pytest
from toasty.merge import averaging_merger

from astroflow.processing.fits_tiling import (
    as_card_value,
    fits_study_tiles,
    nanmean_2x2,
    stretch_hints,
)
from astroflow.processing.tiling import count_tiles


def test_nanmean_2x2_is_toastys_averaging_merger_on_its_bottom_up_buffer() -> None:
    rng = np.random.default_rng(5)
    block = rng.normal(100.0, 30.0, (512, 512)).astype(np.float32)
    block[rng.random(block.shape) < 0.3] = np.nan
    block[:2, :2] = np.nan  # an all-NaN quartet stays NaN
    theirs = averaging_merger(block[::-1])[::-1]  # toasty's buffers hold FITS rows bottom-up
    np.testing.assert_array_equal(nanmean_2x2(block), theirs)
    assert np.isnan(nanmean_2x2(block)[0, 0])


@pytest.mark.parametrize(
    ("width", "height"), [(700, 300), (256, 256), (40, 30), (1000, 1000)], ids=str
)
def test_every_tile_the_image_touches_with_its_range(width: int, height: int) -> None:
    """As many tiles as the PNG pyramid of an opaque image; the top tile comes last; each
    tile's range is that of the finest pixels below it, and the image's own range on top."""
    rng = np.random.default_rng(6)
    image = rng.normal(0.0, 1.0, (height, width)).astype(np.float32)
    tiles = list(fits_study_tiles(image))
    assert len(tiles) == count_tiles(width, height)
    top = tiles[-1]
    assert (top.level, top.x, top.y) == (0, 0, 0)
    assert (top.data_min, top.data_max) == (image.min(), image.max())
    assert all(t.values.shape == (256, 256) and t.values.dtype == np.float32 for t in tiles)
    finest = [t for t in tiles if t.level == tiles[0].level]
    assert sum(int(np.isfinite(t.values).sum()) for t in finest) == image.size
    hints = stretch_hints(top)
    assert hints.cut_low == pytest.approx(np.nanpercentile(top.values, 0.5))
    assert hints.data_max == as_card_value(image.max())


def test_a_float64_image_keeps_float64_tiles() -> None:
    image = np.arange(12.0).reshape(3, 4)
    (tile,) = fits_study_tiles(image)
    assert tile.values.dtype == np.float64
    assert tile.name == "0/0/0_0.fits"
    assert np.count_nonzero(np.isfinite(tile.values)) == 12


def test_card_values_are_what_a_reader_gets_back() -> None:
    assert as_card_value(np.float32(86.24654388427734)) == 86.246544  # str() of a float32
    assert as_card_value(None) is None
