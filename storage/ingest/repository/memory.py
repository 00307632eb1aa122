"""A repository in fsspec's process-wide memory filesystem (``memory://name/prefix``; tests)."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

import fsspec

from astroflow.storage.ingest.repository.base import Repository
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.keys import validate_key


class MemoryRepository(Repository):
    """Files in memory, shared by every repository of the same URL in this process."""

    backend: ClassVar[str] = "memory"

    @classmethod
    def from_ref(cls, ref: RepositoryRef, **options: Any) -> MemoryRepository:
        parts = urlsplit(ref.url)
        root = "/" + (parts.netloc + parts.path).strip("/")
        if root != "/":
            validate_key(root.lstrip("/"))
        return cls(fsspec.filesystem("memory"), root, ref, **options)

    def _key_of(self, path: str) -> str:
        # the memory filesystem answers some listings without the leading slash
        return super()._key_of(path if path.startswith("/") else "/" + path)
