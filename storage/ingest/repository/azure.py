"""A repository in an Azure Blob container (``az://container/prefix``) through adlfs.

Credentials come from the environment only: by default whatever adlfs reads
(``AZURE_STORAGE_CONNECTION_STRING`` and friends), or the handle's ``credential_env``, the name
of an environment variable holding a connection string (toasty's ``--azure-conn-env``).
Secrets never appear in reprs, logs, exceptions or pickles: a pickled repository re-reads the
environment when it is unpickled.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import fsspec
from azure.core import exceptions as azure_errors

from astroflow.models import settings
from astroflow.models.errors import RepositoryError
from astroflow.models.settings import Settings
from astroflow.storage.ingest.repository.base import Repository, content_type_for
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.keys import validate_container_name, validate_key

#: Azure credential variables adlfs may read; their values are redacted from every message.
CREDENTIAL_VARIABLES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
)


def secret_parts(conn_str: str | None) -> tuple[str, ...]:
    """The connection string and its secret fields, for redaction."""
    if not conn_str:
        return ()
    parts = [conn_str]
    for field in conn_str.split(";"):
        name, _, value = field.partition("=")
        if name.strip().lower() in ("accountkey", "sharedaccesssignature") and value:
            parts.append(value)
    return tuple(p for p in parts if len(p) >= 6)


def _filesystem(conn_str: str | None, env_name: str) -> fsspec.AbstractFileSystem:
    """adlfs's filesystem; with a connection string, its client bounded by our settings.

    The Azure SDK's own policy retries each request 3 times from 15 s (~78 s for a dead
    endpoint, before our retries); with a connection string the client is rebuilt with
    ``azure_sdk_retries`` retries from 1 s and the connect/read timeouts of the settings.

    Raises
    ------
    RepositoryError
        For a malformed connection string (named by the variable it came from).
    """
    from adlfs import AzureBlobFileSystem

    settings = Settings()
    kwargs: dict[str, Any] = {
        "skip_instance_cache": True,
        "connection_timeout": settings.azure_connect_timeout,
        "read_timeout": settings.azure_read_timeout,
    }
    if conn_str:
        kwargs["connection_string"] = conn_str
    try:
        fs = AzureBlobFileSystem(**kwargs)
        if conn_str:
            from adlfs.spec import _USER_AGENT
            from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

            fs.service_client = BlobServiceClient.from_connection_string(
                conn_str,
                user_agent=_USER_AGENT,
                retry_policy=ExponentialRetry(
                    initial_backoff=1,
                    increment_base=2,
                    retry_total=settings.azure_sdk_retries,
                ),
                connection_timeout=settings.azure_connect_timeout,
                read_timeout=settings.azure_read_timeout,
            )
    except (ValueError, TypeError, KeyError) as exc:
        # the SDK's message can quote the string: say only what and where
        raise RepositoryError(
            f"the Azure connection string in {env_name} is malformed ({type(exc).__name__}); "
            "expected 'DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;"
            "BlobEndpoint=...'"
        ) from None
    return fs


class AzureRepository(Repository):
    """Blobs under ``container/prefix``; uploads overwrite and carry their Content-Type."""

    backend: ClassVar[str] = "azure"
    transient: ClassVar[tuple[type[BaseException], ...]] = (
        ConnectionError,
        TimeoutError,
        azure_errors.ServiceRequestError,  # connection refused/reset, timeouts included
        azure_errors.ServiceResponseError,
        azure_errors.IncompleteReadError,
        aiohttp.ClientConnectionError,  # ServerDisconnectedError included
    )
    connection_faults: ClassVar[tuple[type[BaseException], ...]] = (
        ConnectionError,
        TimeoutError,
        azure_errors.ServiceRequestError,
        aiohttp.ClientConnectionError,
    )

    def __init__(
        self, fs: fsspec.AbstractFileSystem, root: str, ref: RepositoryRef, **options: Any
    ) -> None:
        super().__init__(fs, root, ref, **options)
        self.url = f"az://{root}"

    @classmethod
    def from_ref(cls, ref: RepositoryRef, **options: Any) -> AzureRepository:
        parts = urlsplit(ref.url)
        credential_env = ref.credential_env
        container = validate_container_name(parts.netloc)
        prefix = parts.path.strip("/")
        if prefix:
            validate_key(prefix)
        conn_str: str | None = None
        env_name = "AZURE_STORAGE_CONNECTION_STRING"
        if credential_env:
            env_name = credential_env
            conn_str = settings.environment_variable(credential_env)
            if not conn_str:
                raise RepositoryError(
                    f"environment variable {credential_env!r} (named for the repository's "
                    "connection string) is not set or empty"
                )
        env = settings.environment_values(CREDENTIAL_VARIABLES)
        conn_str = conn_str or env.get("AZURE_STORAGE_CONNECTION_STRING")
        secrets = secret_parts(conn_str) + secret_parts(env.get("AZURE_STORAGE_CONNECTION_STRING"))
        for name, value in env.items():
            if name != "AZURE_STORAGE_CONNECTION_STRING" and len(value) >= 6:
                secrets += (value,)
        root = f"{container}/{prefix}" if prefix else container
        return cls(_filesystem(conn_str, env_name), root, ref, secrets=secrets, **options)

    def __repr__(self) -> str:
        env = f", credential_env={self.ref.credential_env!r}" if self.ref.credential_env else ""
        return f"{type(self).__name__}({self.url!r}{env})"

    @property
    def container(self) -> str:
        return self._root.split("/", 1)[0]

    def _upload_kwargs(self, key: str) -> dict[str, Any]:
        return {"overwrite": True, "content_settings": {"content_type": content_type_for(key)}}

    def _write_file(self, path: str, key: str, data: bytes) -> None:
        self._fs.pipe_file(path, data, **self._upload_kwargs(key))

    def _upload_file(self, local_path: str, path: str, key: str) -> None:
        self._fs.put_file(local_path, path, **self._upload_kwargs(key))

    def _entries(self, path: str) -> list[dict[str, Any]]:
        self._fs.invalidate_cache(path)  # another writer may have changed the listing
        return super()._entries(path)

    def ensure(self) -> None:
        if not self._call("check", "", lambda: self._fs.exists(self.container)):
            self._call("create container", self.container, lambda: self._fs.mkdir(self.container))

    def _check_root(self) -> None:
        if not self._fs.exists(self.container):
            raise RepositoryError(f"Azure container {self.container!r} does not exist")
