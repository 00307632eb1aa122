"""Repositories: one interface (:class:`Repository`), one class per backend, one :func:`open`.

- :class:`LocalRepository`: a local folder (a path or ``file:///path``);
- :class:`MemoryRepository`: ``memory://name/prefix`` (tests);
- :class:`AzureRepository`: ``az://container/prefix`` or ``abfs://container/prefix`` (Azure
  Blob through adlfs; credentials from the environment only).

:func:`open_repository` picks the class by the URL's scheme.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from astroflow.models.errors import RepositoryError
from astroflow.storage.repository.base import CONTENT_TYPES, Repository, content_type_for
from astroflow.storage.repository.local import LocalRepository
from astroflow.storage.repository.memory import MemoryRepository

__all__ = [
    "CONTENT_TYPES",
    "LocalRepository",
    "MemoryRepository",
    "Repository",
    "content_type_for",
    "open_repository",
]


def open_repository(
    url: str | os.PathLike[str],
    azure_conn_env: str | None = None,
    **options: Any,
) -> Repository:
    """Open a repository from a URL or local path.

    Parameters
    ----------
    url
        A local path, ``file:///path``, ``memory://name/prefix``, ``az://container/prefix`` or
        ``abfs://container/prefix``.
    azure_conn_env
        For Azure: the *name* of an environment variable that holds the connection string.
        Without it adlfs reads its usual variables (``AZURE_STORAGE_CONNECTION_STRING``, ...).
    **options
        Passed to the repository class (``max_workers``, ``retries``, ``backoff``).

    Raises
    ------
    RepositoryError
        For an unsupported scheme, a URL with credentials or a query string, or a missing
        environment variable.
    InvalidKeyError
        For an invalid Azure container name or prefix.
    """
    text = os.fspath(url)
    if "://" not in text:
        return LocalRepository.from_path(text, **options)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment or parts.username or parts.password:
        raise RepositoryError(
            f"repository URL {parts.scheme}://{parts.hostname or ''}{parts.path} has credentials "
            "or a query string; credentials come from environment variables only"
        )
    if scheme == "file":
        return LocalRepository.from_path(parts.netloc + parts.path, url=text, **options)
    if scheme == "memory":
        return MemoryRepository.from_url(text, parts, **options)
    if scheme in ("az", "abfs", "abfss"):
        # adlfs and the Azure SDK are imported only for Azure repositories
        from astroflow.storage.repository.azure import AzureRepository

        return AzureRepository.from_url(parts, azure_conn_env=azure_conn_env, **options)
    raise RepositoryError(
        f"unsupported repository URL scheme {scheme!r} in {text!r}: use a local path, file://, "
        "memory://, az:// or abfs://"
    )
