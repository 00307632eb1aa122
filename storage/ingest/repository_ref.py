"""The handle of a repository: what flows, tasks and the CLI pass instead of strings."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:
    from astroflow.storage.ingest.repository.base import Repository

__all__ = ["RepositoryRef"]


class RepositoryRef(BaseModel):
    """Names a repository and how to reach its credentials; serialisable (Prefect task
    inputs, Dask, pickles) and free of secrets, so it travels where a repository may not.

    Made once at the edge (a flow's ``repository`` and ``azure_conn_env`` parameters, the
    CLI's options) and opened where the bytes are read or written.

    Attributes
    ----------
    url
        A local path or a URL whose scheme picks the backend (``file://``, ``memory://``,
        ``az://``, ``abfs://``, or any scheme a package registers in the
        ``astroflow.repositories`` entry-point group). Never holds credentials.
    credential_env
        The *name* of an environment variable holding the backend's credential (for Azure, a
        connection string: toasty's ``--azure-conn-env``); None: the backend's usual sources.
    credential_block
        The *name* of a Prefect block holding it instead (for Azure, prefect-azure's
        ``AzureBlobStorageCredentials``), loaded where the repository is opened.
    """

    model_config = ConfigDict(frozen=True)

    url: str
    credential_env: str | None = None
    credential_block: str | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @classmethod
    def of(
        cls,
        repository: str | os.PathLike[str] | RepositoryRef,
        credential_env: str | None = None,
        credential_block: str | None = None,
    ) -> RepositoryRef:
        """The handle of ``repository`` (a URL, a path or a handle, returned as it is).

        Raises
        ------
        ConfigError
            When both a variable and a block are named (one credential, one place).
        """
        if isinstance(repository, RepositoryRef):
            return repository
        if credential_env and credential_block:
            from astroflow.models.errors import ConfigError

            raise ConfigError(
                f"give the repository's credential one way: azure_conn_env "
                f"({credential_env!r}) or azure_block ({credential_block!r}), not both"
            )
        return cls(
            url=os.fspath(repository),
            credential_env=credential_env or None,
            credential_block=credential_block or None,
        )

    @property
    def scheme(self) -> str:
        """The URL's scheme, lower case; ``file`` for a plain path."""
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "file"

    def open(self, **options: Any) -> Repository:
        """The repository this names (see
        :func:`astroflow.storage.ingest.repository.open_repository`)."""
        from astroflow.storage.ingest.repository import open_repository

        return open_repository(self, **options)

    def __str__(self) -> str:
        return self.url
