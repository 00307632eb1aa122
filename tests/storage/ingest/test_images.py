"""FITS inputs read lazily: every view of a FitsRows equals the same view of the full array."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroflow.models.errors import ProcessingError, WcsError
from astroflow.processing.render import RenderedRows
from astroflow.storage.fits_rows import FitsRows
from astroflow.storage.ingest.images import flip_vertical, read_fits, read_picture


def _write(path: Path, data: np.ndarray, **cards: float) -> Path:
    hdu = fits.PrimaryHDU(data)
    for key, value in cards.items():
        hdu.header[key] = value
    hdu.writeto(path)
    return path


@pytest.fixture
def science(rng: np.random.Generator) -> np.ndarray:
    data = rng.normal(100.0, 15.0, (601, 333)).astype(np.float32)
    data[5, :7] = np.nan
    return data


KEYS = {
    "band": np.s_[10:300],
    "all": np.s_[:],
    "strided": np.s_[::4, ::3],
    "window": np.s_[100:500:7, 20:300:5],
    "reversed": np.s_[::-1],
    "reversed-window": np.s_[590:3:-9, 300:10:-4],
    "empty": np.s_[50:50],
}


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_views_match_the_full_array(tmp_path: Path, science: np.ndarray, key: object) -> None:
    loaded = read_fits(_write(tmp_path / "a.fits", science))
    assert isinstance(loaded.pixels, FitsRows)
    assert loaded.pixels.shape == science.shape
    loaded.pixels.band_rows = 64  # several bands per read
    np.testing.assert_array_equal(loaded.pixels[key], science[key])
    np.testing.assert_array_equal(flip_vertical(loaded.pixels)[key], science[::-1][key])


def test_scaled_integers_and_single_plane_cube(tmp_path: Path, rng: np.random.Generator) -> None:
    raw = rng.integers(-3000, 3000, (40, 50)).astype(np.int16)
    path = _write(tmp_path / "s.fits", raw[None], BSCALE=0.5, BZERO=100.0)
    loaded = read_fits(path)
    assert loaded.pixels.shape == (40, 50)
    np.testing.assert_allclose(loaded.pixels[:], raw * 0.5 + 100.0)


STORED = {
    # dtype, cards: which numbers are stored and how astropy turns them into values
    "float32": (np.float32, {}),
    "float64": (np.float64, {}),
    "uint8": (np.uint8, {}),
    "int16": (np.int16, {}),
    "int32": (np.int32, {}),
    "int16-bzero": (np.int16, {"BZERO": 32768.0}),
    "int16-bscale": (np.int16, {"BSCALE": 0.25, "BZERO": -7.0}),
    "int16-blank": (np.int16, {"BLANK": -32768}),
}


@pytest.mark.parametrize(("dtype", "cards"), STORED.values(), ids=STORED.keys())
@pytest.mark.parametrize("key", [np.s_[::4, ::3], np.s_[590:3:-9, 300:10:-4]], ids=["down", "up"])
def test_sparse_rows_are_the_values_astropy_reads(
    tmp_path: Path, rng: np.random.Generator, dtype: type, cards: dict, key: object
) -> None:
    """Rows far apart are read one by one straight from the file when the stored numbers are
    the values, through astropy's bands otherwise: either way, astropy's numbers."""
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is None:
        raw = rng.normal(0.0, 1e3, (601, 333)).astype(dtype)
        raw[7, 3] = np.nan
    else:
        raw = rng.integers(info.min, info.max, (601, 333), endpoint=True).astype(dtype)
        raw[8, 0] = info.min  # the BLANK value, where there is one
    path = _write(tmp_path / "s.fits", raw, **cards)
    with fits.open(path) as hdul:
        values = np.asarray(hdul[0].data, np.float32)  # astropy's (BSCALE, BZERO, BLANK)
    loaded = read_fits(path)
    np.testing.assert_array_equal(loaded.pixels[key], values[key])
    np.testing.assert_array_equal(flip_vertical(loaded.pixels)[key], values[::-1][key])
    loaded.close()


def test_a_file_cut_short_while_sampled_names_it(tmp_path: Path, science: np.ndarray) -> None:
    path = _write(tmp_path / "c.fits", science)
    loaded = read_fits(path)
    path.write_bytes(path.read_bytes()[: 2880 + 300 * 333 * 4])  # truncated after opening
    with pytest.raises(ProcessingError, match=r"c\.fits: truncated \(row \d+ is short\)"):
        loaded.pixels[::8]
    loaded.close()


def test_rendering_from_disk_equals_rendering_in_memory(
    tmp_path: Path, science: np.ndarray
) -> None:
    lazy = RenderedRows(read_fits(_write(tmp_path / "r.fits", science)).pixels)
    full = RenderedRows(science)
    assert (lazy.vmin, lazy.vmax) == (full.vmin, full.vmax)
    np.testing.assert_array_equal(lazy[200:456], full[200:456])
    np.testing.assert_array_equal(lazy[::5, ::5], full[::5, ::5])


def test_gzipped_file_is_read_whole(tmp_path: Path, science: np.ndarray) -> None:
    plain = _write(tmp_path / "g.fits", science)
    packed = tmp_path / "g.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    loaded = read_fits(packed)
    assert isinstance(loaded.pixels, np.ndarray)
    np.testing.assert_array_equal(loaded.pixels, science)


def test_truncated_file_is_refused_up_front(tmp_path: Path, science: np.ndarray) -> None:
    path = _write(tmp_path / "t.fits", science)
    path.write_bytes(path.read_bytes()[: 2880 + 10000])
    with pytest.raises(ProcessingError, match=r"t\.fits.*truncated"):
        read_fits(path)


def test_no_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(path)
    with pytest.raises(ProcessingError, match="no 2-D image"):
        read_fits(path)


def test_wcs_error_names_the_input_once_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "image.fits"
    header = fits.Header()
    for key, value in {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "RA---TAN",  # two RA axes: wcslib refuses, in several lines of its own
        "CRVAL1": 10.0,
        "CRVAL2": 20.0,
        "CRPIX1": 5.0,
        "CRPIX2": 5.0,
        "CDELT1": -1e-4,
        "CDELT2": 1e-4,
    }.items():
        header[key] = value
    fits.PrimaryHDU(np.zeros((10, 10), np.float32), header).writeto(path)
    with pytest.raises(WcsError) as info:
        read_fits(path, label="/data/night/m42.fits")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("/data/night/m42.fits: unreadable WCS: ")
    assert message.count("m42.fits") == 1
    assert "image.fits" not in message  # our copy's name is not the user's input


@pytest.mark.parametrize("suffix", [".jpg", ".png"], ids=["jpeg", "png"])
def test_picture_without_xmp_has_no_avm_and_is_not_unreadable(tmp_path: Path, suffix: str) -> None:
    from PIL import Image

    path = tmp_path / f"plain{suffix}"
    Image.fromarray(np.full((12, 16, 3), 90, np.uint8)).save(path)
    loaded = read_picture(path, label="https://x.org/plain" + suffix)
    assert loaded.wcs is None  # "no AVM tags": the caller says "no celestial WCS"
