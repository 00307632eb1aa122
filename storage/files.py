"""Small local-file helpers shared by the stages: digests, atomic JSON, folder replacement."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest (``sha256`` or ``md5``) of a local file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algo).hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a local path atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def move_replacing(src: Path, dest: Path) -> None:
    """Rename the folder ``src`` to ``dest``, replacing an existing ``dest`` folder."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
