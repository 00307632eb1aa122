"""Study pyramids: geometry, sparse tiles, pixel placement and the 2x2 cascade."""

from __future__ import annotations

import numpy as np
import pytest

from astroflow.processing.tiling import (
    Tile,
    any_visible,
    count_tiles,
    plain_mean_2x2,
    study_tiles,
    thumbnail_box,
)
from astroflow.processing.wcs import study_geometry


@pytest.mark.parametrize(
    ("size", "p2n", "levels"),
    [
        ((200, 100), 256, 0),
        ((256, 256), 256, 0),
        ((257, 10), 512, 1),
        ((2166, 2129), 4096, 4),
        ((5000, 3000), 8192, 5),
    ],
    ids=["small", "exact", "one-over", "toasty-example", "large"],
)
def test_geometry(size: tuple[int, int], p2n: int, levels: int) -> None:
    got = study_geometry(*size)
    assert got[:2] == (p2n, levels)
    assert got[2] == (p2n - size[0]) // 2
    assert got[3] == (p2n - size[1]) // 2


def test_tile_count_matches_toasty_example(rng: np.random.Generator) -> None:
    # toasty: a 2166x2129 image gives 4 levels, 157 tiles, 100 at level 4.
    img = rng.integers(0, 255, (2129, 2166, 3), dtype=np.uint8)
    tiles = list(study_tiles(img))
    assert len(tiles) == 157 == count_tiles(2166, 2129)
    assert sum(t.level == 4 for t in tiles) == 100
    assert len({(t.level, t.x, t.y) for t in tiles}) == 157


def _by_key(tiles: list[Tile]) -> dict[tuple[int, int, int], np.ndarray]:
    return {(t.level, t.x, t.y): t.pixels for t in tiles}


@pytest.mark.parametrize(
    "shape", [(300, 517), (200, 200), (513, 260)], ids=["wide-odd", "small", "tall"]
)
@pytest.mark.parametrize("channels", [2, 4], ids=["grey-alpha", "rgba"])
def test_top_level_pixels_come_from_the_image(
    shape: tuple[int, int], channels: int, rng: np.random.Generator
) -> None:
    h, w = shape
    img = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    img[..., -1] = rng.integers(1, 256, (h, w))  # nonzero alpha: every image pixel is "there"
    p2n, levels, x0, y0 = study_geometry(w, h)
    tiles = _by_key(list(study_tiles(img)))
    canvas = np.zeros((p2n, p2n, channels), np.uint8)
    for (level, tx, ty), rgba in tiles.items():
        if level == levels:
            canvas[ty * 256 : (ty + 1) * 256, tx * 256 : (tx + 1) * 256] = rgba
    np.testing.assert_array_equal(canvas[y0 : y0 + h, x0 : x0 + w], img)
    outside = canvas.copy()
    outside[y0 : y0 + h, x0 : x0 + w] = 0
    assert not outside.any()  # padding is fully transparent


def test_grey_image_gives_grey_alpha_tiles_like_its_rgb_twin(rng: np.random.Generator) -> None:
    grey = rng.integers(0, 256, (300, 700, 1), dtype=np.uint8)
    grey_tiles = _by_key(list(study_tiles(grey)))
    rgb_tiles = _by_key(list(study_tiles(np.repeat(grey, 3, axis=2))))
    assert grey_tiles.keys() == rgb_tiles.keys()
    for key, tile in grey_tiles.items():
        assert tile.shape == (256, 256, 2)
        np.testing.assert_array_equal(tile[..., [0, 0, 0, 1]], rgb_tiles[key])


def test_parent_is_alpha_weighted_two_by_two_mean() -> None:
    # 512x512 opaque pattern: parent pixel = mean of the 2x2 block (rounded).
    yy, xx = np.mgrid[0:512, 0:512]
    img = np.zeros((512, 512, 3), np.uint8)
    img[..., 0] = (xx % 256).astype(np.uint8)
    img[..., 1] = (yy % 256).astype(np.uint8)
    img[..., 2] = ((xx + yy) % 7 * 30).astype(np.uint8)
    tiles = _by_key(list(study_tiles(img)))
    top = tiles[(0, 0, 0)]
    expect = img.astype(np.float64).reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))
    assert np.abs(top[..., :3] - expect).max() <= 0.5
    assert (top[..., 3] == 255).all()


def test_edges_are_not_darkened_by_padding() -> None:
    img = np.full((300, 300, 3), 200, np.uint8)  # odd offset into a 512 canvas
    tiles = _by_key(list(study_tiles(img)))
    top = tiles[(0, 0, 0)]
    visible = top[..., 3] > 0
    assert (top[visible][:, :3] == 200).all()  # toasty would average zeros in at the edges


def test_sparse_tiles_skip_empty_areas() -> None:
    img = np.zeros((100, 1500, 4), np.uint8)  # 2048 canvas, a thin band in the middle
    img[..., 3] = 255
    tiles = list(study_tiles(img))
    assert all(t.pixels[..., 3].any() for t in tiles)
    assert len(tiles) == count_tiles(1500, 100)
    # rows 974-1073 straddle tile rows 3 and 4; columns 274-1773 span tiles 1-6
    assert {(t.x, t.y) for t in tiles if t.level == 3} == {
        (x, y) for x in range(1, 7) for y in (3, 4)
    }


@pytest.mark.parametrize("channels", [2, 4], ids=["grey-alpha", "rgba"])
@pytest.mark.parametrize("alpha", [0, 1, 128, 255], ids=lambda a: f"alpha-{a}")
def test_any_visible_reads_alpha_only(channels: int, alpha: int) -> None:
    """One pixel's alpha decides, whatever the colours (255 everywhere, as bright as it gets),
    also in a strided view (a tile cut from a band)."""
    band = np.full((16, 48, channels), 255, np.uint8)
    band[..., -1] = 0
    band[5, 37, -1] = alpha
    tile = band[:, 32:48]
    assert any_visible(tile) is (alpha > 0)
    assert any_visible(band[:, :32]) is False
    assert any_visible(tile) is bool(tile[..., -1].any())


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "rgb"])
def test_any_visible_without_alpha_is_opaque(channels: int) -> None:
    assert any_visible(np.zeros((4, 4, channels), np.uint8)) is True
    assert any_visible(np.zeros((0, 4, channels), np.uint8)) is False


def test_bad_input_rejected() -> None:
    with pytest.raises(ValueError, match="uint8"):
        list(study_tiles(np.zeros((10, 10), np.float32)))


@pytest.mark.parametrize(
    ("w", "h"), [(960, 450), (2000, 450), (100, 1000)], ids=["exact", "wide", "tall"]
)
def test_thumbnail_box_aspect(w: int, h: int) -> None:
    left, top, right, bottom = thumbnail_box(w, h)
    assert abs((right - left) / (bottom - top) - 96 / 45) < 0.02
    assert 0 <= left < right <= w
    assert 0 <= top < bottom <= h


@pytest.mark.parametrize("channels", [2, 4], ids=["grey-alpha", "rgba"])
def test_pillow_box_reducer_gives_the_numpy_means(channels: int, rng: np.random.Generator) -> None:
    from astroflow.storage.ingest.images import box_reduce_2x2

    block = rng.integers(0, 256, (64, 96, channels), dtype=np.uint8)
    block[:20, :, -1] = 255
    block[20:30, :, -1] = 0
    np.testing.assert_array_equal(box_reduce_2x2(block), plain_mean_2x2(block))
    img = rng.integers(0, 256, (300, 700, channels), dtype=np.uint8)
    img[:, :100, -1] = 0
    img[:, 100:200, -1] = 255
    fast = _by_key(list(study_tiles(img, plain_mean=box_reduce_2x2)))
    slow = _by_key(list(study_tiles(img)))
    assert fast.keys() == slow.keys()
    for key in fast:
        np.testing.assert_array_equal(fast[key], slow[key])


class _Flagged:
    """An array seen through the attributes an image may carry for the tiler."""

    def __init__(self, array: np.ndarray, **flags: bool) -> None:
        self.array, self.shape, self.ndim, self.dtype = array, array.shape, 3, array.dtype
        self.__dict__.update(flags)

    def __getitem__(self, key: object) -> np.ndarray:
        return self.array[key]


@pytest.mark.parametrize(
    ("channels", "flags"),
    [(2, {"binary_alpha": True}), (4, {"opaque": True})],
    ids=["binary-grey (a rendered FITS)", "opaque-rgba (an RGB picture)"],
)
def test_promised_alpha_gives_the_same_tiles_as_the_general_path(
    channels: int, flags: dict, rng: np.random.Generator
) -> None:
    img = rng.integers(0, 256, (301, 517, channels), dtype=np.uint8)  # odd: mixed edges
    if flags.get("opaque"):
        img[..., -1] = 255
    else:
        holes = rng.random((301, 517)) < 0.2  # NaN pixels: transparent and black
        img[..., -1] = np.where(holes, 0, 255)
        img[holes, :-1] = 0
    fast = _by_key(list(study_tiles(_Flagged(img, **flags), plain_mean=plain_mean_2x2)))
    slow = _by_key(list(study_tiles(img)))
    assert fast.keys() == slow.keys()
    for key in fast:
        np.testing.assert_array_equal(fast[key], slow[key])
