"""Validation of repository keys, image ids and Azure container names.

A *key* is a repository-relative, ``/``-separated path such as ``"m42/L0X0Y0.png"``. Keys are
validated before any filesystem call so that path traversal is impossible whatever the backend.
"""

from __future__ import annotations

import re
import unicodedata

from astroflow.models.errors import InvalidKeyError

__all__ = ["safe_id", "validate_container_name", "validate_id", "validate_key"]

_CONTAINER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
#: The characters of an id (image, session, cached data file): also what ``safe_id`` keeps.
ID_CHARACTERS = "A-Za-z0-9._+-"
_ID_RE = re.compile(rf"^[A-Za-z0-9][{ID_CHARACTERS}]{{0,127}}$")
MAX_KEY_LENGTH = 1024


def validate_key(key: str, *, allow_root: bool = False) -> str:
    """Check that ``key`` is a safe repository-relative key and return it.

    Parameters
    ----------
    key
        ``/``-separated relative path.
    allow_root
        Accept the empty key (the repository root).

    Raises
    ------
    InvalidKeyError
        For absolute paths, ``..`` or ``.`` segments, empty segments (``a//b``, trailing ``/``),
        backslashes, control characters, or keys longer than 1024 characters.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"repository key must be a string, not {type(key).__name__}")
    if key == "":
        if allow_root:
            return key
        raise InvalidKeyError("empty repository key")
    shown = repr(key[:80])
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"repository key {shown}... is longer than {MAX_KEY_LENGTH} chars")
    if "\\" in key:
        raise InvalidKeyError(f"repository key {shown} contains a backslash")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in key):
        raise InvalidKeyError(f"repository key {shown} contains a control character")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key) or "://" in key:
        raise InvalidKeyError(f"repository key {shown} is absolute; keys are relative")
    for segment in key.split("/"):
        if segment == "":
            raise InvalidKeyError(f"repository key {shown} has an empty segment")
        if segment in (".", ".."):
            raise InvalidKeyError(f"repository key {shown} has a {segment!r} segment")
    return key


def is_valid_id(name: str) -> bool:
    """Whether ``name`` is 1-128 characters of ``[A-Za-z0-9._+-]``, starting alphanumeric,
    without ``..``."""
    return isinstance(name, str) and bool(_ID_RE.match(name)) and ".." not in name


def validate_id(image_id: str) -> str:
    """Check an image or session id: 1-128 chars of ``[A-Za-z0-9._+-]``, starting alphanumeric.

    Raises
    ------
    InvalidKeyError
        Naming the offending id.
    """
    if not is_valid_id(image_id):
        raise InvalidKeyError(
            f"invalid id {str(image_id)[:80]!r}: ids are 1-128 characters of letters, digits, "
            "'.', '_', '+' and '-', starting with a letter or digit, without '..'"
        )
    return image_id


def safe_id(text: str) -> str:
    """Turn a free-form name (a file stem) into a valid id, or raise if nothing is left.

    Characters outside ``[A-Za-z0-9._+-]`` become ``_``; runs of dots are collapsed; the result
    is cut to 128 characters.
    """
    cleaned = re.sub(rf"[^{ID_CHARACTERS}]", "_", text)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).lstrip("._+-")[:128]
    return validate_id(cleaned)


_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


def validate_session_id(name: str) -> str:
    """Check a session id: 1-16 characters of letters, digits, ``_`` and ``-``."""
    if not isinstance(name, str) or not _SESSION_RE.match(name):
        raise InvalidKeyError(
            f"invalid session id {str(name)[:40]!r}: 1-16 letters, digits, '_' or '-'"
        )
    return name


def validate_container_name(name: str) -> str:
    """Check an Azure Blob container name: 3-63 chars, lowercase letters, digits and single
    hyphens, starting and ending with a letter or digit.

    adlfs silently "finds" invalid container names, so we refuse them here.
    """
    if not _CONTAINER_RE.match(name or ""):
        raise InvalidKeyError(
            f"invalid Azure container name {name!r}: 3-63 characters of lowercase letters, "
            "digits and single hyphens, starting and ending with a letter or digit"
        )
    return name
