"""Key, id and container-name validation."""

from __future__ import annotations

import pytest

from astroflow.models.errors import InvalidKeyError
from astroflow.storage.keys import safe_id, validate_container_name, validate_id, validate_key


@pytest.mark.parametrize(
    "key",
    ["a", "a/b.png", "0/0/0_0.png", "noao_m42/index.wtml", "x-y_z.1"],
    ids=["plain", "nested", "tile", "wtml", "punct"],
)
def test_good_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../b", "/abs", "a//b", "", "a\\b", "a/./b", "a\x00b", "C:/x", "a/"],
    ids=[
        "dotdot",
        "inner-dotdot",
        "absolute",
        "empty-part",
        "empty",
        "backslash",
        "dot",
        "nul",
        "drive",
        "trailing-slash",
    ],
)
def test_hostile_keys(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(key)


@pytest.mark.parametrize(
    "image_id",
    ["../x", "a/b", ".", "..", "", "x" * 300, "a b"],
    ids=["dotdot", "slash", "dot", "dotdot-only", "empty", "long", "space"],
)
def test_hostile_ids(image_id: str) -> None:
    with pytest.raises(InvalidKeyError, match="id"):
        validate_id(image_id)


def test_safe_id_makes_valid_ids() -> None:
    for text in ["NOAO/M42 image", "../x", "ümlaut", "a" * 500]:
        validate_id(safe_id(text))


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("wwt-data", True),
        ("abc", True),
        ("ab", False),
        ("Upper", False),
        ("a--b", False),
        ("-ab", False),
        ("a" * 64, False),
    ],
    ids=["good", "short-ok", "too-short", "upper", "double-dash", "leading-dash", "too-long"],
)
def test_container_names(name: str, ok: bool) -> None:
    if ok:
        assert validate_container_name(name) == name
    else:
        with pytest.raises(InvalidKeyError):
            validate_container_name(name)
