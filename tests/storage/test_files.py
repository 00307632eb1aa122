"""Local-file helpers: digests, atomic JSON, folder replacement."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from astroflow.storage.files import file_digest, move_replacing, write_json_atomic


@pytest.mark.parametrize("algo", ["sha256", "md5"])
def test_file_digest_matches_hashlib(tmp_path: Path, rng: np.random.Generator, algo: str) -> None:
    data = rng.bytes(3 * 2**20 + 17)  # several read chunks and a partial one
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_digest(path, algo) == hashlib.new(algo, data).hexdigest()


def test_write_json_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    write_json_atomic(target, {"b": 1, "a": [1, 2]})
    write_json_atomic(target, {"c": 3})
    assert json.loads(target.read_text()) == {"c": 3}
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_move_replacing_swaps_whole_folders(tmp_path: Path) -> None:
    src, dest = tmp_path / "new", tmp_path / "out" / "img"
    (src / "tiles").mkdir(parents=True)
    (src / "tiles" / "a.png").write_text("new")
    (dest / "stale").mkdir(parents=True)
    (dest / "stale" / "old.png").write_text("old")
    move_replacing(src, dest)
    assert not src.exists()
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "tiles",
        "tiles/a.png",
    ]
