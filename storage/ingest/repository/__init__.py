"""Repositories: one interface (:class:`Repository`), one class per backend, one opener.

A backend is a :class:`Repository` subclass registered under each URL scheme it serves in the
``astroflow.repositories`` entry-point group (astroflow's own in ``pyproject.toml``):

- :class:`LocalRepository`: a local folder (a path or ``file:///path``);
- :class:`MemoryRepository`: ``memory://name/prefix`` (tests);
- ``AzureRepository``: ``az://container/prefix``, ``abfs://container/prefix`` or adlfs's
  ``abfs://container@account.dfs.core.windows.net/prefix`` (Azure Blob through adlfs;
  credentials from the environment or a Prefect block only).

:class:`RepositoryRef` names one (URL plus where its credential is); :func:`open_repository`
opens it with the class registered for its scheme.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from astroflow.models.errors import ConfigError, RepositoryError
from astroflow.storage.ingest.repository.base import CONTENT_TYPES, Repository, content_type_for
from astroflow.storage.ingest.repository.local import LocalRepository
from astroflow.storage.ingest.repository.memory import MemoryRepository
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.plugins import find_plugin, plugin_names

__all__ = [
    "CONTENT_TYPES",
    "ENTRY_POINT_GROUP",
    "LocalRepository",
    "MemoryRepository",
    "Repository",
    "RepositoryRef",
    "content_type_for",
    "open_repository",
]

ENTRY_POINT_GROUP = "astroflow.repositories"


def open_repository(
    repository: str | os.PathLike[str] | RepositoryRef, **options: Any
) -> Repository:
    """Open a repository from its handle (or a URL or local path, with no credential).

    Parameters
    ----------
    repository
        A :class:`RepositoryRef`, a local path, or a URL: ``file:///path``,
        ``memory://name/prefix``, ``az://container/prefix``, ``abfs://container/prefix``, or a
        scheme a plug-in registers.
    **options
        Passed to the repository class (``max_workers``, ``retries``, ``backoff``).

    Raises
    ------
    RepositoryError
        For an unregistered scheme, a URL with credentials or a query string, or a missing
        environment variable.
    InvalidKeyError
        For an invalid Azure container name or prefix.
    """
    ref = RepositoryRef.of(repository)
    text = ref.url
    parts = urlsplit(text) if "://" in text else None
    if parts is not None and (parts.query or parts.fragment or parts.password):
        raise RepositoryError(
            f"repository URL {parts.scheme}://{parts.hostname or ''}{parts.path} has "
            "credentials or a query string; credentials come from environment variables only"
        )
    try:
        backend = find_plugin(ENTRY_POINT_GROUP, ref.scheme, "repository URL scheme")
    except ConfigError:
        schemes = ", ".join(f"{s}://" for s in plugin_names(ENTRY_POINT_GROUP))
        raise RepositoryError(
            f"unsupported repository URL scheme {ref.scheme!r} in {text!r}: use a local path "
            f"or one of {schemes}"
        ) from None
    if not (isinstance(backend, type) and issubclass(backend, Repository)):
        raise RepositoryError(
            f"the {ENTRY_POINT_GROUP} entry point {ref.scheme!r} is not a Repository class"
        )
    if parts is not None and parts.username and not backend.account_in_url:
        raise RepositoryError(
            f"repository URL {parts.scheme}://{parts.hostname or ''}{parts.path} has a user "
            "part; credentials come from environment variables only"
        )
    return backend.from_ref(ref, **options)
