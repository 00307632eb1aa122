"""Tiled-FITS files as astropy reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroflow.processing.fits_tiling import FitsTile
from astroflow.storage.ingest.fits_tiles import encode_fits_tile, write_fits_tiles


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_tile_reads_back_bottom_up_with_its_range(tmp_path: Path, dtype: type) -> None:
    values = np.arange(256 * 256, dtype=dtype).reshape(256, 256)
    values[:10] = np.nan
    tile = FitsTile(2, 3, 1, values, dtype(2560.0), dtype(65535.0))
    path = tmp_path / "t.fits"
    path.write_bytes(encode_fits_tile(tile))
    assert path.stat().st_size % 2880 == 0
    with fits.open(path) as hdul:
        hdul.verify("exception")
        np.testing.assert_array_equal(hdul[0].data, values[::-1])  # FITS rows bottom-up
        assert hdul[0].header["DATAMIN"] == 2560.0
        assert hdul[0].header["DATAMAX"] == 65535.0
        assert hdul[0].header["BITPIX"] == (-64 if dtype is np.float64 else -32)


def test_tiles_are_written_in_wwts_layout(tmp_path: Path) -> None:
    blank = np.full((256, 256), np.nan, np.float32)
    tiles = [FitsTile(1, x, 0, blank, None, None) for x in range(2)]
    tiles.append(FitsTile(0, 0, 0, blank, None, None))
    count, nbytes, top = write_fits_tiles(tiles, tmp_path, workers=2)
    assert count == 3
    assert top is tiles[-1]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.fits")) == [
        "0/0/0_0.fits",
        "1/0/0_0.fits",
        "1/0/0_1.fits",
    ]
    assert nbytes == sum(p.stat().st_size for p in tmp_path.rglob("*.fits"))
    assert "DATAMIN" not in fits.getheader(tmp_path / "0/0/0_0.fits")  # all NaN: no range
