"""Free disk space, checked before a job starts writing (a full disk mid-way helps nobody)."""

from __future__ import annotations

import shutil
from pathlib import Path

from astroflow.models.errors import ConfigError

#: Room left over besides the estimate (databases, logs, the filesystem's own needs), bytes.
MARGIN_BYTES = 16 * 2**20


def free_bytes(path: Path) -> int:
    """Bytes free to an ordinary process on the filesystem holding ``path`` (its nearest
    existing folder)."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def require_free(path: Path, need: int, what: str) -> None:
    """Raise a clear error when ``what`` (about ``need`` bytes) will not fit under ``path``.

    Raises
    ------
    ConfigError
        Naming the job, the bytes it needs and those free, and where.
    """
    free = free_bytes(path)
    if need + MARGIN_BYTES > free:
        raise ConfigError(
            f"{what} needs about {_size(need + MARGIN_BYTES)} on {path}, and "
            f"{_size(free)} is free: free some space (or move the folder) and run again"
        )


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover
