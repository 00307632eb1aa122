"""Local files: one atomic writer for every stage, digests, atomic JSON, folder replacement.

Every write of a local file that a reader may see half-done goes through :func:`atomic_write`
(or its two shorthands): the bytes go to a uniquely named temporary file beside the target
(``.<name>.tmp-<12 hex>``), are flushed (and fsynced where asked), then renamed over the
target. A killed writer leaves at most a temporary file, never a partial target; two writers
of one target never share a temporary file. :func:`remove_temp_leftovers` sweeps the
temporary files of killed writers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_GLOB = ".*.tmp-*"


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A unique temporary path beside ``path`` (same folder, so the rename is atomic)."""
    target = Path(path)
    return target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:12]}")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "wb", *, fsync: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on a clean exit rename it over ``path``.

    Parameters
    ----------
    path
        The target file; its folder is created when missing.
    mode
        ``"wb"`` or ``"w"`` (text, UTF-8).
    fsync
        Flush the bytes to the disk before the rename (files whose loss after a power cut
        would be worse than a slower write: records, markers, downloaded data).

    On an exception (or ``KeyboardInterrupt``) the temporary file is removed and the target is
    left as it was.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write opens files for writing, not mode {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path, "wb", fsync=fsync) as f:
        f.write(data)


def copy_atomic(src: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Copy the local file ``src`` to ``path`` through :func:`atomic_write`."""
    with open(src, "rb") as source, atomic_write(path, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON (indented, sorted keys) to a local path atomically, fsynced."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    write_bytes_atomic(path, text.encode("utf-8"), fsync=True)


def remove_temp_leftovers(root: Path) -> int:
    """Remove the temporary files of killed :func:`atomic_write` callers under ``root``."""
    gone = 0
    if root.is_dir():
        for path in root.rglob(TEMP_GLOB):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                gone += 1
    return gone


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest (``sha256`` or ``md5``) of a local file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algo).hexdigest()


def move_replacing(src: Path, dest: Path) -> None:
    """Rename the folder ``src`` to ``dest``, replacing an existing ``dest`` folder."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
