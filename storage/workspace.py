"""The organiser's workspace on disk: compressed frames, headers, moves, SOF files.

Layout (after soxspipe)::

    <workspace>/raw/<night>/*.fits   raw frames, by night
    <workspace>/misc/                anything else (with the reason recorded in the database)
    <workspace>/sessions/<id>/sof/   one SOF per set
    <workspace>/sessions/<id>/reduced/<night>/<recipe>/<name>.fits   products
    <workspace>/sessions/<id>/qc/    QC tables
    <workspace>/astroflow.db         SQLite database (default)
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import ProcessingError

log = logging.getLogger(__name__)

FITS_SUFFIXES = (".fits", ".fit", ".fts")
COMPRESSED = (".z", ".gz")


@dataclass(frozen=True, slots=True)
class FileStat:
    """A file's workspace-relative path with the size and mtime that say "unchanged"."""

    path: str
    size: int
    mtime_ns: int


def stat(workspace: Path, rel: str) -> FileStat:
    st = (workspace / rel).stat()
    return FileStat(rel, st.st_size, st.st_mtime_ns)


def is_fits_name(name: str) -> bool:
    return name.lower().endswith(FITS_SUFFIXES) and not name.startswith(".")


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
        if not path.is_file() or not any(
            lower.endswith(f + c) for f in FITS_SUFFIXES for c in COMPRESSED
        ):
            continue
        target = path.with_name(path.name.rsplit(".", 1)[0])
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            raw = path.read_bytes()
            data = unlzw3.unlzw(raw) if lower.endswith(".z") else gzip.decompress(raw)
            if target.exists():
                raise ProcessingError(f"{target.name} already exists")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            path.unlink()
            done.append(target.name)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            reason = f"cannot uncompress {path.name}: {exc}"
            failed.append((path.name, reason))
            move_to(workspace, path, "misc")
    return done, failed


BLOCK = 2880
CARD = 80


def read_header(path: Path, keywords: frozenset[str] | set[str]) -> dict[str, Any]:
    """The named cards of a FITS file's primary header as a dict (keyword -> value).

    Only those cards are parsed: the header blocks are scanned card by card up to ``END``,
    several times faster than astropy parsing the whole header (the organiser's hot path).
    ``HIERARCH`` keywords are matched without the prefix (``ESO DPR CATG``); values other than
    strings, logicals, integers and reals go through astropy's ``Card``.

    Raises
    ------
    ProcessingError
        Naming the file, when it is not FITS or its header is truncated.
    """
    from astropy.io import fits

    return _scan_header(path, keywords, fits.Card)


def _scan_header(path: Path, wanted: frozenset[str] | set[str], card_type: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        with open(path, "rb") as f:
            block = f.read(BLOCK)
            if not block.startswith(b"SIMPLE  ="):
                raise ProcessingError(f"{path.name}: not a readable FITS header: no SIMPLE card")
            while True:
                if len(block) < BLOCK:
                    raise ProcessingError(
                        f"{path.name}: not a readable FITS header: truncated (no END card)"
                    )
                for i in range(0, BLOCK, CARD):
                    head = block[i : i + 10]
                    if head[:8] == b"END     ":
                        return out
                    if head[:8] == b"HIERARCH":
                        text = block[i : i + CARD].decode("ascii", "replace")
                        eq = text.find("=")
                        key = text[9:eq].strip() if eq > 0 else ""
                    elif head[8:10] == b"= ":
                        key = head[:8].decode("ascii", "replace").rstrip()
                    else:
                        continue
                    if key in wanted:
                        text = block[i : i + CARD].decode("ascii", "replace")
                        try:
                            out[key] = card_type.fromstring(text).value
                        except Exception as exc:
                            raise ProcessingError(
                                f"{path.name}: unreadable {key} card: {exc}"
                            ) from exc
                block = f.read(BLOCK)
    except OSError as exc:
        raise ProcessingError(f"{path.name}: cannot read: {exc}") from exc


def _card_value(text: str, card_type: Any) -> Any:
    """The value of a card: strings, logicals, integers and reals parsed directly (FITS
    standard fixed and free formats); anything else through astropy's ``Card``."""
    eq = text.find("=")
    raw = text[eq + 1 :].lstrip()
    if raw.startswith("'"):
        out, i = [], 1
        while i < len(raw):
            ch = raw[i]
            if ch == "'":
                if raw[i + 1 : i + 2] == "'":
                    out.append("'")
                    i += 2
                    continue
                return "".join(out).rstrip()
            out.append(ch)
            i += 1
        return card_type.fromstring(text).value
    token = raw.split("/", 1)[0].strip()
    if token == "T":
        return True
    if token == "F":
        return False
    if token == "":
        return None
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token.replace("D", "E"))
    except ValueError:
        return card_type.fromstring(text).value


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


def session_dir(workspace: Path, session: str) -> Path:
    return workspace / "sessions" / session


def write_sofs(workspace: Path, session: str, sofs: dict[str, str]) -> int:
    """Write SOF files (name -> text) for a session, only those whose bytes differ, and remove
    stale ones. Returns the number of files written or removed."""
    folder = session_dir(workspace, session) / "sof"
    folder.mkdir(parents=True, exist_ok=True)
    changed = 0
    for name, text in sofs.items():
        path = folder / f"{name}.sof"
        data = text.encode("utf-8")
        if path.exists() and path.read_bytes() == data:
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        changed += 1
    for path in folder.glob("*.sof"):
        if path.stem not in sofs:
            path.unlink()
            changed += 1
    return changed


def ensure_session_dirs(workspace: Path, session: str) -> Path:
    root = session_dir(workspace, session)
    for sub in ("sof", "qc", "reduced", "settings"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


QC_DEFAULTS = Path(__file__).resolve().parents[1] / "models" / "settings" / "qc-default.yaml"


def load_qc_ranges(workspace: Path, session: str) -> dict[str, dict[str, tuple[float, float]]]:
    """Acceptable QC ranges per recipe: ``sessions/<id>/settings/qc.yaml`` when present, else
    the shipped defaults. Bounds are inclusive.

    Raises
    ------
    ConfigError
        Naming the file, recipe and value, for a malformed range.
    """
    import yaml

    from models.errors import ConfigError

    path = session_dir(workspace, session) / "settings" / "qc.yaml"
    if not path.exists():
        path = QC_DEFAULTS
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for recipe, ranges in data.items():
        out[recipe] = {}
        for name, bounds in (ranges or {}).items():
            try:
                lo, hi = (float(b) for b in bounds)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{path}: {recipe}.{name} must be [min, max], got {bounds!r}"
                ) from None
            out[recipe][name] = (lo, hi)
    return out
