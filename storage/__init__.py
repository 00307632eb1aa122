"""Every byte in or out: repositories (fsspec), FITS and image files, the database, downloads."""

from __future__ import annotations

from typing import Any

from astroflow.storage.keys import safe_id, validate_container_name, validate_id, validate_key
from astroflow.storage.repository import Repository, open_repository

__all__ = [
    "RemoteData",
    "Repository",
    "open_repository",
    "safe_id",
    "validate_container_name",
    "validate_id",
    "validate_key",
]


def __getattr__(name: str) -> Any:
    # RemoteData pulls in urllib3 and SQLModel: import it only when asked for.
    if name == "RemoteData":
        from astroflow.storage.remote import RemoteData

        return RemoteData
    raise AttributeError(name)
