"""A minimal, fast PNG encoder for tiles.

Why not Pillow: measured on 256x256 tiles (benchmarks/bench_ingest.py, README), Pillow's
encoder takes ~17 ms a tile at ``compress_level=1`` and ~27 ms at its default. This encoder
applies the PNG "Up" filter with numpy and deflates with ISA-L (python-isal: Intel's
deflate, ~4-8x faster than zlib's level 1 for output as small, and it releases the GIL so
threads scale); levels 0 and 4-9 use zlib with its RLE strategy.

A tile is written with the fewest channels that hold it: grey images (a rendered FITS) as
``L``/``LA``, colour as ``RGB``/``RGBA``, and the alpha channel only when some pixel is not
opaque. The output is a standard 8-bit non-interlaced PNG that Pillow, browsers and WWT read.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STRATEGIES = {"rle": zlib.Z_RLE, "default": zlib.Z_DEFAULT_STRATEGY}
# PNG colour types by channel count: grey, grey + alpha, RGB, RGBA
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
ISAL_LEVELS = (1, 2, 3)  # the levels ISA-L compresses at; the others go to zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _deflate(raw: memoryview, level: int, strategy: str) -> bytes:
    if level in ISAL_LEVELS and strategy == "rle":
        from isal import isal_zlib

        return isal_zlib.compress(raw, level)
    comp = zlib.compressobj(level, zlib.DEFLATED, 15, 9, STRATEGIES[strategy])
    return comp.compress(raw) + comp.flush()


def _encode(pixels: np.ndarray, level: int, strategy: str) -> bytes:
    h, w, c = pixels.shape
    raw = np.empty((h, w * c + 1), np.uint8)
    raw[:, 0] = 2  # filter type Up for every row (row 0 is "up" from zeros: unchanged)
    body = raw[:, 1:].reshape(h, w, c)  # a view: the filter reads any strided pixels
    body[0] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=body[1:])  # uint8 arithmetic wraps mod 256
    idat = _deflate(raw.data, level, strategy)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, COLOUR_TYPES[c], 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode_png(pixels: np.ndarray, level: int = 1, strategy: str = "rle") -> bytes:
    """PNG bytes of an ``(H, W, C)`` uint8 array (row 0 at the top), C = 1 (grey), 2 (grey,
    alpha), 3 (RGB) or 4 (RGBA).

    An alpha channel that is 255 everywhere is left out of the file (the picture is the same).

    Parameters
    ----------
    level
        Compression level 0-9: 1-3 are ISA-L's levels, 0 (stored) and 4-9 zlib's.
    strategy
        ``"rle"`` (fast, default) or ``"default"`` (zlib's usual matching, at any level).
    """
    if pixels.ndim != 3 or pixels.shape[2] not in COLOUR_TYPES or pixels.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 1-4) uint8, got {pixels.shape} {pixels.dtype}")
    h, w, c = pixels.shape
    if c in (2, 4) and pixels[..., c - 1].min() == 255:  # opaque: no alpha channel
        if c == 4:  # Pillow drops it 2x faster than numpy's strided copy (measured)
            from PIL import Image

            rgba = Image.frombuffer(
                "RGBA", (w, h), np.ascontiguousarray(pixels), "raw", "RGBA", 0, 1
            )
            pixels = np.asarray(rgba.convert("RGB"))
        else:
            pixels = np.ascontiguousarray(pixels[..., 0])[..., None]
    # the filter reads contiguous pixels: strided ones cost 80x more (1.8 ms a tile)
    return _encode(np.ascontiguousarray(pixels), level, strategy)


def encode_rgba(rgba: np.ndarray, level: int = 1, strategy: str = "rle") -> bytes:
    """PNG bytes of an ``(H, W, 4)`` uint8 array, always written as RGBA (previews)."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 4) uint8, got {rgba.shape} {rgba.dtype}")
    return _encode(rgba, level, strategy)
