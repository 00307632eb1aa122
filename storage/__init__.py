"""Every byte in or out: repositories (fsspec), FITS and image files, the database, downloads."""

from __future__ import annotations

from typing import Any

from astroflow.storage.keys import safe_id, validate_container_name, validate_id, validate_key

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
    # The repositories pull in fsspec (and asyncio), RemoteData urllib3 and SQLModel: each is
    # imported when asked for, so that reading one image file (storage.avm, storage.images)
    # does not pay for them.
    if name in ("Repository", "open_repository"):
        from astroflow.storage.ingest import repository

        return getattr(repository, name)
    if name == "RemoteData":
        from astroflow.storage.remote import RemoteData

        return RemoteData
    raise AttributeError(name)
