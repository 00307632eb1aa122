"""Read input images (FITS, JPEG/PNG/TIFF with AVM tags) and write tiles and thumbnails."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from astroflow.models.cascade import WCS_ORIGIN_KEY
from astroflow.models.errors import ProcessingError, WcsError, one_line
from astroflow.storage.fits_names import FITS_SUFFIXES as FITS_NAMES
from astroflow.storage.fits_names import compressed_fits_suffixes
from astroflow.storage.fits_rows import FitsRows, require_complete
from astroflow.storage.ingest.avm import read_avm
from astroflow.storage.ingest.fits_wcs import celestial_wcs
from astroflow.storage.png import encode_png

log = logging.getLogger(__name__)

FITS_SUFFIXES = FITS_NAMES + compressed_fits_suffixes((".gz",))
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
IMAGE_SUFFIXES = FITS_SUFFIXES + PICTURE_SUFFIXES
# Deflate level of PNG tiles (1-3: ISA-L's levels; see storage/png.py).
DEFAULT_PNG_LEVEL = 1


def image_kind(name: str) -> str | None:
    """``"fits"``, ``"picture"`` or None for a file name."""
    lower = name.lower()
    if lower.endswith(FITS_SUFFIXES):
        return "fits"
    if lower.endswith(PICTURE_SUFFIXES):
        return "picture"
    return None


class PictureRows:
    """Row access to a decoded picture without copying it into a numpy array.

    Pillow already holds the decoded pixels; the tiler reads them
    one band of rows at a time through ``[r0:r1]``, so peak memory stays near the decoded
    image itself (toasty keeps a second full copy). Bands are RGBA: an RGB picture's get an
    opaque alpha from Pillow (one C pass, where numpy's strided fill costs 10x more), and
    ``opaque`` tells the tiler that alpha is then 255 everywhere.
    """

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(self, image: Image.Image, flipped: bool = False) -> None:
        self.image = image
        self.flipped = flipped
        self.opaque = image.mode == "RGB"
        self.shape = (image.height, image.width, 4)

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("PictureRows supports [r0:r1] only")
        h = self.shape[0]
        r0, r1, _ = rows.indices(h)
        if self.flipped:
            r0, r1 = h - r1, h - r0
        crop = self.image.crop((0, r0, self.shape[1], r1))
        band = np.asarray(crop if crop.mode == "RGBA" else crop.convert("RGBA"))
        return band[::-1] if self.flipped else band

    def flip(self) -> PictureRows:
        return PictureRows(self.image, not self.flipped)


def flip_vertical(pixels: Any) -> Any:
    """The same pixels with rows in the opposite order (a view, no copy)."""
    return pixels.flip() if isinstance(pixels, PictureRows | FitsRows) else pixels[::-1]


@dataclass(frozen=True)
class LoadedImage:
    """Pixels and WCS of an input image.

    ``pixels`` is ``(H, W)`` float (FITS) or ``(H, W, 3|4)`` uint8 (pictures), row 0 of the
    stored file first; ``wcs`` is the file's WCS (FITS header, or AVM tags for pictures): an
    astropy WCS, or a FITS header's plain TAN form read by ``storage.fits_wcs`` (a dict), or
    None. A FITS WCS counts y from row 0; an AVM WCS, like FITS, counts y from
    the bottom of the picture, that is from its last row.
    """

    pixels: Any  # FitsRows or np.ndarray (FITS), PictureRows (pictures)
    wcs: Any | None  # astropy WCS, or a plain TAN header dict (storage.fits_wcs)
    kind: str
    ignored: tuple[str, ...] = ()  # AVM tags left out, unreadable ("Spatial.Notes: <why>")
    # where a FITS file says its WCS came from (astroflow's products: AF_WCSRC, "astrometry"
    # for a solved frame); "" when it does not say
    wcs_origin: str = ""

    def close(self) -> None:
        """Release the file behind lazily read pixels (nothing to do for the others)."""
        if isinstance(self.pixels, FitsRows):
            self.pixels.close()


def read_fits(path: Path, label: str | None = None) -> LoadedImage:
    """The first 2-D image HDU of a FITS file and its celestial WCS (None if it has none).

    Parameters
    ----------
    label
        How errors name the file (the user's path or URL; default: the file name).

    Raises
    ------
    ProcessingError
        For a corrupt or truncated file or one with no 2-D image, named once, on one line.
    """
    label = label or path.name
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            # Plain (uncompressed) files are read lazily, band by band; the HDU list stays
            # open for as long as the pixels are referenced. Compressed ones are read whole.
            lazy = not path.name.lower().endswith(".gz")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=True)
            try:
                for hdu in hdul:
                    shape = tuple(hdu.shape) if hdu.is_image else ()
                    if len(shape) == 3 and shape[0] == 1:
                        shape = shape[1:]
                    if len(shape) != 2 or 0 in shape:
                        continue
                    wcs = celestial_wcs(hdu.header)
                    origin = str(hdu.header.get(WCS_ORIGIN_KEY, "") or "").strip()
                    if lazy and type(hdu) in (fits.PrimaryHDU, fits.ImageHDU):
                        require_complete(hdu, path)
                        return LoadedImage(FitsRows(hdul, hdu, shape), wcs, "fits", (), origin)
                    data = np.asarray(hdu.data).reshape(shape)
                    hdul.close()
                    return LoadedImage(data, wcs, "fits", (), origin)
            except BaseException:
                hdul.close()
                raise
            hdul.close()
    except (WcsError, ProcessingError) as exc:
        raise type(exc)(f"{label}: {one_line(exc)}") from exc
    except Exception as exc:
        raise ProcessingError(f"{label}: not a readable FITS file: {one_line(exc)}") from exc
    raise ProcessingError(f"{label}: no 2-D image HDU")


def read_picture(path: Path, *, want_avm: bool = True, label: str | None = None) -> LoadedImage:
    """A JPEG/PNG/TIFF as ``(H, W, 3|4)`` uint8 and its AVM WCS (rows counted from the top).

    Parameters
    ----------
    label
        How errors name the file (the user's path or URL; default: the file name).

    Raises
    ------
    ProcessingError
        For a corrupt, truncated or oversized file.
    """
    label = label or path.name
    try:
        img = Image.open(path)
        img.load()
        mode = "RGBA" if ("A" in img.getbands() or "transparency" in img.info) else "RGB"
        if img.mode != mode:
            img = img.convert(mode)
    except Exception as exc:  # PIL raises OSError, SyntaxError, DecompressionBombError...
        raise ProcessingError(f"{label}: not a readable image: {one_line(exc)}") from exc
    found = read_avm(path, img.width, img.height, label) if want_avm else None
    if found is None:  # not asked for, or no AVM tags at all
        return LoadedImage(PictureRows(img), None, "picture")
    return LoadedImage(PictureRows(img), found.wcs, "picture", found.ignored)


WCS_SIDECAR = "wcs.fits"  # the sidecar's name in a fetched image's folder
SIDECAR_SUFFIXES = (".wcs.fits", "_wcs.fits")  # beside image.jpg: image.wcs.fits, image_wcs.fits


def read_wcs_sidecar(path: Path, label: str) -> tuple[Any, tuple[int, int] | None]:
    """The celestial WCS of a sidecar FITS header (as toasty's ``--fits-wcs``: the first HDU,
    pixel y counted from the image's first stored row) and the image size it was made for
    (Astrometry.net's ``IMAGEW``/``IMAGEH``, else the HDU's own size; None when it says none).

    Raises
    ------
    WcsError
        Naming ``label``, for a file that is not FITS or holds no celestial WCS.
    """
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            with fits.open(path, memmap=False) as hdul:
                header = hdul[0].header
                wcs = celestial_wcs(header)
    except Exception as exc:
        raise WcsError(f"{label}: not a readable FITS WCS header: {one_line(exc)}") from None
    if wcs is None:
        raise WcsError(f"{label}: the sidecar has no celestial WCS")
    size: tuple[int, int] | None = None
    if header.get("IMAGEW") and header.get("IMAGEH"):
        size = (int(header["IMAGEW"]), int(header["IMAGEH"]))
    elif int(header.get("NAXIS", 0)) >= 2 and header.get("NAXIS1") and header.get("NAXIS2"):
        size = (int(header["NAXIS1"]), int(header["NAXIS2"]))
    return wcs, size


def read_image(path: Path, *, want_wcs: bool = True, label: str | None = None) -> LoadedImage:
    """Read any supported image, dispatching on its suffix; errors name it ``label``."""
    kind = image_kind(path.name)
    if kind == "fits":
        return read_fits(path, label)
    if kind == "picture":
        return read_picture(path, want_avm=want_wcs, label=label)
    raise ProcessingError(f"{label or path.name}: unsupported image type")


def box_reduce_2x2(block: np.ndarray) -> np.ndarray:
    """The rounded plain 2x2 mean of every channel of a (2h, 2w, 2|4) uint8 array, by
    Pillow's C box reducer: the same numbers as :func:`processing.tiling.plain_mean_2x2`
    (tested), 3-5x faster. The modes ``La``/``RGBX`` make Pillow reduce the bytes as they are
    (for ``LA``/``RGBA`` it would premultiply by alpha first); ``RGBX`` also reads the array
    in place, where ``La`` copies it."""
    h2, w2, channels = block.shape
    mode = {2: "La", 4: "RGBX"}[channels]
    img = Image.frombuffer(mode, (w2, h2), np.ascontiguousarray(block), "raw", mode, 0, 1)
    return np.array(img.reduce(2))


def _encode_png(tile: Any, out_dir: str, level: int) -> int:
    data = encode_png(tile.pixels, level)
    with open(os.path.join(out_dir, tile.name), "wb") as f:
        f.write(data)
    return len(data)


def write_in_threads(
    items: Iterable[Any], write: Callable[[Any], int], *, workers: int | None, name: str
) -> tuple[int, int]:
    """``write(item)`` for every item with a pool of ``workers`` threads (one per CPU by
    default), at most ``4 * workers`` in flight so that a lazy iterable of tiles is never
    all in memory; ``write`` returns the bytes it wrote.

    Returns
    -------
    count, nbytes
        Items written and their total size in bytes.
    """
    workers = workers or os.cpu_count() or 1
    limit = 4 * workers
    count = nbytes = 0
    pending: set[Future[int]] = set()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        for item in items:
            pending.add(pool.submit(write, item))
            if len(pending) >= limit:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    nbytes += fut.result()
                    count += 1
        for fut in pending:
            nbytes += fut.result()
            count += 1
    return count, nbytes


def write_tiles(
    tiles: Iterable[Any],
    out_dir: Path,
    *,
    workers: int | None = None,
    png_level: int = DEFAULT_PNG_LEVEL,
) -> tuple[int, int]:
    """Encode tiles (objects with ``name`` and a ``pixels`` array) to PNG files in ``out_dir``
    with a thread pool (zlib releases the GIL), keeping at most ``4 * workers`` tiles in
    flight.

    Returns
    -------
    count, nbytes
        Number of tiles written and their total size in bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_in_threads(
        tiles,
        lambda tile: _encode_png(tile, str(out_dir), png_level),
        workers=workers,
        name="png",
    )


def write_thumbnail(
    image: Any,
    path: Path,
    box: tuple[int, int, int, int],
    size: tuple[int, int] = (96, 45),
) -> None:
    """A ``thumb.jpg`` of ``size`` (96x45) from the ``box`` (left, top, right, bottom) of an
    image (row 0 on top): a picture, or an ``(H, W, C)`` uint8 array-like with alpha last
    (C = 2 grey, 4 RGBA) or without (C = 1, 3). Transparent pixels become black.
    """
    if isinstance(image, PictureRows):
        img = image.image
        if image.flipped:
            img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        thumb = img.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
        if thumb.mode == "RGBA":
            black = Image.new("RGB", size)
            black.paste(thumb, mask=thumb.getchannel("A"))
            thumb = black
        thumb.save(path, "JPEG", quality=90)
        return
    left, top, right, bottom = box
    step = max(1, min((bottom - top) // (size[1] * 4), (right - left) // (size[0] * 4)))
    crop = np.asarray(image[top:bottom:step, left:right:step])
    if crop.shape[2] in (2, 4):  # alpha last: transparent pixels become black
        alpha = crop[..., -1:].astype(np.uint16)
        crop = (crop[..., :-1].astype(np.uint16) * alpha // 255).astype(np.uint8)
    if crop.shape[2] == 1:  # grey
        crop = np.repeat(crop, 3, axis=2)
    img = Image.fromarray(np.ascontiguousarray(crop), "RGB").resize(size, Image.Resampling.LANCZOS)
    img.save(path, "JPEG", quality=90)
