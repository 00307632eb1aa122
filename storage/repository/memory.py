"""A repository in fsspec's process-wide memory filesystem (``memory://name/prefix``; tests)."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import SplitResult

import fsspec

from astroflow.storage.keys import validate_key
from astroflow.storage.repository.base import Repository


class MemoryRepository(Repository):
    """Files in memory, shared by every repository of the same URL in this process."""

    backend: ClassVar[str] = "memory"

    @classmethod
    def from_url(cls, url: str, parts: SplitResult, **options: Any) -> MemoryRepository:
        root = "/" + (parts.netloc + parts.path).strip("/")
        if root != "/":
            validate_key(root.lstrip("/"))
        return cls(fsspec.filesystem("memory"), root, url, **options)

    def _key_of(self, path: str) -> str:
        # the memory filesystem answers some listings without the leading slash
        return super()._key_of(path if path.startswith("/") else "/" + path)
