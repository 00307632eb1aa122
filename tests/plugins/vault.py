"""The ``vault://`` repository backend: a local folder under a root that an environment
variable names (its "credential"), ``vault://<folder>`` -> ``$VAULT_ROOT/<folder>``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from fsspec.implementations.local import LocalFileSystem

from astroflow.models.errors import RepositoryError
from astroflow.storage.ingest.repository import LocalRepository, RepositoryRef


class VaultRepository(LocalRepository):
    backend: ClassVar[str] = "vault"
    opened: ClassVar[list[str]] = []  # the URLs it opened (what the test checks)

    @classmethod
    def from_ref(cls, ref: RepositoryRef, **options: Any) -> VaultRepository:
        variable = ref.credential_env or "VAULT_ROOT"
        base = os.environ.get(variable)
        if not base:
            raise RepositoryError(f"{variable} is not set")
        root = Path(base) / ref.url.split("://", 1)[1].strip("/")
        cls.opened.append(ref.url)
        return cls(LocalFileSystem(), str(root), ref, **options)
