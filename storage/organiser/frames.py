"""FITS frames of the cascade: chunked reading, the pixel cache, products with provenance.

Pixels stream from disk: raw frames are read a band of rows at a time through astropy's
``section`` (which applies BSCALE/BZERO), and pre-processed frames (darks per second,
normalised flats) go to an on-disk cache of ``.npy`` memory maps (mirar's cache mode: pixels
on disk, headers in memory). ``ASTROFLOW_CACHE=false`` keeps them in memory instead.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import socket
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from astroflow.models.errors import ProcessingError
from astroflow.models.settings import Settings
from astroflow.storage.files import atomic_write
from astroflow.storage.fits_rows import FitsRows, require_complete
from astroflow.storage.owners import process_gone
from astroflow.storage.png import encode_rgba


def cache_enabled() -> bool:
    """Whether pre-processed frames go to ``.npy`` memory maps (setting ``ASTROFLOW_CACHE``)."""
    return Settings().cache


#: An image extension of a multi-extension frame: ``(EXTNAME, EXTVER)``.
Extension = tuple[str, int]

#: Cards of a header that describe its HDU's own structure (never inherited or copied).
STRUCTURE_CARDS = frozenset(
    {
        "SIMPLE",
        "XTENSION",
        "BITPIX",
        "NAXIS",
        "NAXIS1",
        "NAXIS2",
        "NAXIS3",
        "EXTEND",
        "PCOUNT",
        "GCOUNT",
        "BSCALE",
        "BZERO",
        "EXTNAME",
        "EXTVER",
        "INHERIT",
        "COMMENT",
        "HISTORY",
        "",
    }
)


def read_header(path: Path, ext: Extension | None = None, *, inherit: bool = True) -> fits.Header:
    """The primary header, or for ``ext`` the extension's header followed (``inherit``) by the
    primary's cards it lacks: keywords are looked up in the extension first, then the primary
    (the inheritance NOAO, ESO and HST files rely on)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if ext is None:
                return fits.getheader(path)
            with fits.open(path, lazy_load_hdus=True) as hdul:
                header = hdul[ext].header.copy()
                primary = hdul[0].header
    except Exception as exc:
        raise ProcessingError(f"{path.name}: not a readable FITS file: {exc}") from exc
    if not inherit:
        return header
    for card in primary.cards:
        if card.keyword not in STRUCTURE_CARDS and card.keyword not in header:
            with contextlib.suppress(Exception):
                header.append(card)
    return header


def image_extensions(path: Path) -> list[Extension] | None:
    """The image extensions of a frame: None when its primary HDU holds the 2-D image;
    else every extension holding a 2-D image, as ``(EXTNAME, EXTVER)`` (HST's empty ``ERR``
    and ``DQ`` extensions, which hold no data, are not images).

    Raises
    ------
    ProcessingError
        Naming the file and what it holds, for a cube (3-D) or a file with no 2-D image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, lazy_load_hdus=True) as hdul:
                shapes = [
                    (i, hdu.header.get("XTENSION", "PRIMARY"), hdu.name, hdu.ver, hdu.header)
                    for i, hdu in enumerate(hdul)
                ]
    except Exception as exc:
        raise ProcessingError(f"{path.name}: not a readable FITS file: {exc}") from exc
    found: list[Extension] = []
    held: list[str] = []
    for i, kind, name, ver, header in shapes:
        naxis = int(header.get("NAXIS", 0) or 0)
        dims = [int(header.get(f"NAXIS{k}", 0) or 0) for k in range(1, naxis + 1)]
        if kind in ("PRIMARY", "IMAGE") and naxis >= 3 and all(d > 1 for d in dims[2:]):
            raise ProcessingError(
                f"{path.name}: HDU {i} ({name}) is a {naxis}-D cube "
                f"({'x'.join(map(str, dims))}), not a 2-D image"
            )
        if kind in ("PRIMARY", "IMAGE") and naxis >= 2 and dims[0] > 0 and dims[1] > 0:
            if i == 0:
                return None
            found.append((str(name), int(ver)))
        elif kind not in ("PRIMARY", "IMAGE"):
            held.append(f"{str(kind).strip().lower()} {name}".strip())
    if not found:
        what = ", ".join(held) if held else "empty HDUs only"
        raise ProcessingError(f"{path.name}: holds no 2-D image ({what})")
    return found


def read_data(path: Path, ext: int | str | Extension = 0) -> np.ndarray:
    """A whole image (float32; float64 kept) as an array.

    Raises
    ------
    ProcessingError
        Naming the file, when it is corrupt or holds no 2-D image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = fits.getdata(path, ext=ext)
    except Exception as exc:
        raise ProcessingError(f"{path.name}: not a readable FITS image: {exc}") from exc
    if data is None or data.ndim != 2:
        raise ProcessingError(f"{path.name}: no 2-D image")
    return data if data.dtype == np.float64 else data.astype(np.float32, copy=False)


def read_calibration(path: Path, ext: int | str | Extension = 0) -> np.ndarray:
    """A calibration's image (:func:`read_data`), read once for the frames that use it: kept
    (read-only) while the file's size and modification time stay the same, the last four
    images read (a master bias and flat of two extensions). A product written again is a new
    file (:func:`atomic_write`), so its inode tells it from the one kept."""
    st = path.stat()
    return _read_calibration(str(path), ext, (st.st_ino, st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _read_calibration(path: str, ext: Any, version: tuple[int, int, int]) -> np.ndarray:
    data = read_data(Path(path), ext)
    data.flags.writeable = False
    return data


class RawRows(FitsRows):
    """Row-band access (``frame[r0:r1]``, float32) to the image of a raw frame (its primary
    HDU, or the extension ``ext``), without loading it whole."""

    def __init__(self, path: Path, ext: Extension | None = None) -> None:
        self.path = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hdul = fits.open(path, memmap=False, lazy_load_hdus=True)
                hdu = hdul[0 if ext is None else ext]
                shape = tuple(hdu.shape)
        except Exception as exc:
            raise ProcessingError(f"{path.name}: not a readable FITS image: {exc}") from exc
        try:
            if len(shape) != 2:
                raise ProcessingError(f"no 2-D image (shape {shape})")
            # a truncated file fails here, not mid-combine
            require_complete(hdu, path)
        except ProcessingError as exc:
            hdul.close()
            raise ProcessingError(f"{path.name}: {exc}") from None
        super().__init__(hdul, hdu, shape)


CACHE_PREFIX = "astroflow-cache-"


class PixelCache:
    """Pre-processed frames held on disk as ``.npy`` memory maps (or in memory).

    The folder is named for its owner (``astroflow-cache-<pid>@<host>@<random>``) so that the
    caches of a killed run can be told from those of a running one
    (:func:`sweep_pixel_caches`).
    """

    def __init__(self, root: Path | None = None) -> None:
        self.on_disk = cache_enabled()
        prefix = f"{CACHE_PREFIX}{os.getpid()}@{socket.gethostname()}@"
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir=root)) if self.on_disk else None
        self._items: list[np.ndarray] = []

    def add(self, array: np.ndarray) -> np.ndarray:
        if self.root is None:
            self._items.append(array)
            return array
        path = self.root / f"{uuid.uuid4().hex}.npy"
        np.save(path, array, allow_pickle=False)
        mapped = np.load(path, mmap_mode="r")
        self._items.append(mapped)
        return mapped

    def close(self) -> None:
        self._items.clear()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def sweep_pixel_caches(root: Path) -> int:
    """Remove the pixel caches under ``root`` whose owner process (of this host) is gone: the
    leftovers of a run that was killed. Returns how many were removed."""
    gone = 0
    if not root.is_dir():
        return 0
    for path in root.glob(f"{CACHE_PREFIX}*"):
        pid, _, rest = path.name.removeprefix(CACHE_PREFIX).partition("@")
        host = rest.split("@", 1)[0]
        if path.is_dir() and process_gone(host, pid):
            shutil.rmtree(path, ignore_errors=True)
            gone += 1
    return gone


def inputs_hash(paths: Sequence[Path]) -> str:
    """A fingerprint of input files (path, size, mtime): changes when any input changes."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        st = path.stat()
        digest.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _header(
    base: fits.Header | None,
    cards: Mapping[str, Any] | None = None,
    history: Sequence[str] = (),
) -> fits.Header:
    """A new header: the cards of ``base`` but those describing its HDU's structure, then
    ``cards`` and HISTORY lines."""
    header = fits.Header()
    for card in (base or fits.Header()).cards:
        if card.keyword not in STRUCTURE_CARDS:
            with contextlib.suppress(Exception):
                header.append(card)
    for key, value in (cards or {}).items():
        header[key] = value
    for line in history:
        header.add_history(line)
    return header


def write_product(
    path: Path,
    data: np.ndarray,
    cards: Mapping[str, Any],
    history: Sequence[str] = (),
    extensions: Sequence[tuple[str, np.ndarray]] = (),
    base_header: fits.Header | None = None,
) -> None:
    """Write a product FITS atomically: primary image with ``cards`` and HISTORY lines, plus
    named image extensions."""
    hdus = [fits.PrimaryHDU(data, _header(base_header, cards, history))]
    hdus.extend(fits.ImageHDU(arr, name=name) for name, arr in extensions)
    with atomic_write(path, fsync=True) as out:
        fits.HDUList(hdus).writeto(out)


@dataclass(frozen=True)
class ProductPart:
    """One extension of a multi-extension product: the raw frame's ``(EXTNAME, EXTVER)``,
    its pixels, its header (the raw extension's, updated), and its planes (``VARIANCE``,
    ``MASK``), written after it with the same ``EXTVER`` and ``AF_OF`` naming it."""

    extension: Extension
    data: np.ndarray
    header: fits.Header | None = None
    cards: Mapping[str, Any] = field(default_factory=dict)
    planes: Sequence[tuple[str, np.ndarray]] = ()


def write_mef_product(
    path: Path,
    parts: Sequence[ProductPart],
    cards: Mapping[str, Any],
    history: Sequence[str] = (),
    base_header: fits.Header | None = None,
) -> None:
    """Write a multi-extension product atomically: a primary header (the raw primary's
    cards, ``cards`` and HISTORY) without data, then each part and its planes."""
    hdus: list[Any] = [fits.PrimaryHDU(None, _header(base_header, cards, history))]
    for number, part in enumerate(parts, start=1):
        name, ver = part.extension
        hdus.append(fits.ImageHDU(part.data, _header(part.header, part.cards), name=name, ver=ver))
        for plane, array in part.planes:
            extra = fits.Header()
            extra["AF_OF"] = (f"{name},{ver}", "the extension this plane belongs to")
            hdus.append(fits.ImageHDU(array, extra, name=plane, ver=number))
    with atomic_write(path, fsync=True) as out:
        fits.HDUList(hdus).writeto(out)


@contextlib.contextmanager
def opened(
    paths: Sequence[Path], ext: Extension | None = None
) -> Iterator[tuple[list[RawRows], list[tuple[Path, str]]]]:
    """Open raw frames (their extension ``ext``) for row reading; unreadable ones are
    returned as ``(path, reason)``."""
    good: list[RawRows] = []
    bad: list[tuple[Path, str]] = []
    for p in paths:
        try:
            good.append(RawRows(p, ext))
        except ProcessingError as exc:
            bad.append((p, str(exc)))
    try:
        yield good, bad
    finally:
        for r in good:
            r.close()


def write_raw_frame(path: Path, data: np.ndarray, header: Mapping[str, Any]) -> None:
    """Write a raw frame (primary HDU) as acquisition software would."""
    hdr = fits.Header()
    for key, value in header.items():
        hdr[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data, hdr).writeto(path, overwrite=True)


def write_png(rgba: np.ndarray, png_path: Path) -> Path:
    """Write an ``(H, W, 4)`` uint8 image as PNG (a preview), with the tiles' encoder."""
    png_path.write_bytes(encode_rgba(np.ascontiguousarray(rgba)))
    return png_path


def mark_qc_verdict(path: Path, failures: Sequence[str]) -> None:
    """Write the QC verdict into a product's own header: ``AF_QC = 'PASS'`` or ``'FAIL'``,
    and for a failure one ``HISTORY QC FAIL: ...`` card per failed metric (replacing those of
    an earlier verdict)."""
    verdict = "FAIL" if failures else "PASS"
    lines = [f"QC FAIL: {failure}"[:72] for failure in failures]
    current = read_header(path)
    shown = [str(h) for h in current.get("HISTORY", []) if str(h).startswith("QC FAIL: ")]
    if current.get("AF_QC") == verdict and shown == lines:
        return  # unchanged: the file stays as it is (products made from it stay up to date)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, mode="update") as hdul:
            header = hdul[0].header
            header["AF_QC"] = (verdict, "astroflow QC verdict")
            history = [str(h) for h in header.get("HISTORY", [])]
            if "HISTORY" in header:
                del header["HISTORY"]
            for line in history:  # the previous verdict's lines go; the rest stay
                if not line.startswith("QC FAIL: "):
                    header.add_history(line)
            for line in lines:
                header.add_history(line)
