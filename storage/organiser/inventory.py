"""The frames of a workspace on disk: new arrivals in the root, ``raw/<night>/``, ``misc/``.

Layout (after soxspipe)::

    <workspace>/*.fits               new arrivals (``.fits.Z`` and ``.fits.gz`` uncompressed)
    <workspace>/raw/<night>/*.fits   raw frames, by night
    <workspace>/misc/                anything else (with the reason recorded in the database)
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

from astroflow.models.errors import ProcessingError
from astroflow.storage.files import write_bytes_atomic
from astroflow.storage.fits_names import compressed_fits_suffixes, is_fits_name

COMPRESSED = compressed_fits_suffixes()


@dataclass(frozen=True, slots=True)
class FileStat:
    """A file's workspace-relative path with the size and mtime that say "unchanged"."""

    path: str
    size: int
    mtime_ns: int


def stat(workspace: Path, rel: str) -> FileStat:
    """The :class:`FileStat` of the workspace-relative path ``rel``."""
    st = (workspace / rel).stat()
    return FileStat(rel, st.st_size, st.st_mtime_ns)


def uncompress_root(workspace: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Uncompress ``*.fits.Z`` (LZW, via unlzw3) and ``*.fits.gz`` in the workspace root.

    The compressed file is removed once its FITS is written (atomically). A file that cannot be
    uncompressed is moved to ``misc/``.

    Returns
    -------
    done, failed
        Names written, and ``(name, reason)`` for failures.
    """
    import unlzw3

    done: list[str] = []
    failed: list[tuple[str, str]] = []
    for path in sorted(workspace.iterdir()):
        lower = path.name.lower()
        if not path.is_file() or not lower.endswith(COMPRESSED):
            continue
        target = path.with_name(path.name.rsplit(".", 1)[0])
        try:
            raw = path.read_bytes()
            data = unlzw3.unlzw(raw) if lower.endswith(".z") else gzip.decompress(raw)
            if target.exists():
                raise ProcessingError(f"{target.name} already exists")
            write_bytes_atomic(target, data)
            path.unlink()
            done.append(target.name)
        except Exception as exc:
            reason = f"cannot uncompress {path.name}: {exc}"
            failed.append((path.name, reason))
            move_to(workspace, path, "misc")
    return done, failed


def move_to(workspace: Path, path: Path, folder: str) -> str:
    """Move ``path`` into ``workspace/folder/`` (a name clash gets a numbered suffix).

    Returns the workspace-relative destination.
    """
    dest_dir = workspace / folder
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / path.name
    n = 1
    while dest.exists():
        dest = dest_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.replace(path, dest)
    return dest.relative_to(workspace).as_posix()


def root_fits(workspace: Path) -> list[Path]:
    """FITS files sitting in the workspace root (new arrivals)."""
    return sorted(p for p in workspace.iterdir() if p.is_file() and is_fits_name(p.name))


#: Files of astroflow itself in the workspace root (the SQLite database and its companions).
OWN_FILES_PREFIX = "astroflow.db"


def root_others(workspace: Path) -> list[Path]:
    """Visible files in the workspace root that are neither FITS (plain or compressed) nor
    astroflow's own: they belong in ``misc/`` (soxspipe's rule)."""
    out = []
    for p in sorted(workspace.iterdir()):
        lower = p.name.lower()
        if not p.is_file() or p.name.startswith(".") or p.name.startswith(OWN_FILES_PREFIX):
            continue
        if is_fits_name(p.name) or lower.endswith(COMPRESSED):
            continue
        out.append(p)
    return out


def raw_files(workspace: Path) -> dict[str, FileStat]:
    """Every FITS file under ``raw/``, by workspace-relative path."""
    out: dict[str, FileStat] = {}
    raw = workspace / "raw"
    if not raw.is_dir():
        return out
    for night in raw.iterdir():
        if not night.is_dir():
            continue
        with os.scandir(night) as it:
            for entry in it:
                if entry.is_file() and is_fits_name(entry.name):
                    st = entry.stat()
                    rel = f"raw/{night.name}/{entry.name}"
                    out[rel] = FileStat(rel, st.st_size, st.st_mtime_ns)
    return out
