"""Write WWT's tiled-FITS files: tiles as :class:`astroflow.processing.fits_tiling.FitsTile`
makes them (objects with ``level``, ``name``, ``values``, ``data_min`` and ``data_max``).

Each tile is a minimal FITS file as toasty writes it: a primary HDU of 256x256 big-endian
floats (``BITPIX = -32``, or ``-64`` for float64 images) with ``DATAMIN``/``DATAMAX`` (the
range of the finest pixels below it), rows stored bottom-up as FITS stores them. The bytes
are laid out here directly (header cards formatted by astropy's ``Card``), which spares
astropy's HDU machinery per tile; astropy reads them back (tested).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from astroflow.storage.ingest.images import write_in_threads

__all__ = ["encode_fits_tile", "write_fits_tiles"]

_BLOCK = 2880


def encode_fits_tile(tile: Any) -> np.ndarray:
    """The FITS file of one tile, as one bytes-like ``uint8`` array (the tile's values are
    copied once, straight into it, flipped and big-endian)."""
    from astropy.io.fits import Card

    values = tile.values
    bitpix = -64 if values.dtype == np.float64 else -32
    cards = [
        Card("SIMPLE", True, "conforms to FITS standard"),
        Card("BITPIX", bitpix, "array data type"),
        Card("NAXIS", 2, "number of array dimensions"),
        Card("NAXIS1", values.shape[1]),
        Card("NAXIS2", values.shape[0]),
    ]
    if tile.data_min is not None:
        cards.append(Card("DATAMIN", tile.data_min))
    if tile.data_max is not None:
        cards.append(Card("DATAMAX", tile.data_max))
    header = ("".join(c.image for c in cards) + "END".ljust(80)).encode("ascii")
    header += b" " * (-len(header) % _BLOCK)
    size = values.size * (8 if bitpix == -64 else 4)
    out = np.zeros(len(header) + size + (-size % _BLOCK), np.uint8)
    out[: len(header)] = np.frombuffer(header, np.uint8)
    data = out[len(header) : len(header) + size].view(">f8" if bitpix == -64 else ">f4")
    data.reshape(values.shape)[...] = values[::-1]  # FITS rows bottom-up
    return out


def _write(tile: Any, out_dir: str) -> int:
    data = encode_fits_tile(tile)
    path = os.path.join(out_dir, tile.name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.data)
    return data.size


def write_fits_tiles(
    tiles: Iterable[Any], out_dir: Path, *, workers: int | None = None
) -> tuple[int, int, Any]:
    """Write tiles under ``out_dir`` (``{level}/{y}/{y}_{x}.fits``) with a thread pool,
    at most ``4 * workers`` in flight (:func:`storage.ingest.images.write_in_threads`).

    Returns
    -------
    count, nbytes, top
        Tiles written, their total size in bytes, and the level-0 tile (the WTML's data
        range and cut come from it).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    top: list[Any] = []

    def noting_the_top() -> Iterator[Any]:
        for tile in tiles:
            if tile.level == 0:
                top.append(tile)
            yield tile

    count, nbytes = write_in_threads(
        noting_the_top(), lambda tile: _write(tile, str(out_dir)), workers=workers, name="fits-tile"
    )
    return count, nbytes, top[-1] if top else None
