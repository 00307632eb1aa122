"""A repository in an Azure Blob container (``az://container/prefix``) through adlfs.

Credentials come from the environment only: by default whatever adlfs reads
(``AZURE_STORAGE_CONNECTION_STRING`` and friends), or ``azure_conn_env="NAME"``, the name of an
environment variable holding a connection string (toasty's ``--azure-conn-env``). Secrets never
appear in reprs, logs, exceptions or pickles: a pickled repository re-reads the environment when
it is unpickled.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import SplitResult

import aiohttp
import fsspec
from azure.core import exceptions as azure_errors

from astroflow.models import settings
from astroflow.models.errors import RepositoryError
from astroflow.storage.keys import validate_container_name, validate_key
from astroflow.storage.repository.base import Repository, content_type_for


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


def _filesystem(conn_str: str | None, sdk_retries: int | None) -> fsspec.AbstractFileSystem:
    from adlfs import AzureBlobFileSystem

    kwargs: dict[str, Any] = {
        "skip_instance_cache": True,
        "connection_timeout": 20,
        "read_timeout": 120,
    }
    if conn_str:
        kwargs["connection_string"] = conn_str
    fs = AzureBlobFileSystem(**kwargs)
    if conn_str and sdk_retries is not None:
        # adlfs gives no way to tune the Azure SDK's own retry policy (3 exponential retries
        # from 15 s); rebuild its client with ours when asked.
        from adlfs.spec import _USER_AGENT
        from azure.storage.blob.aio import BlobServiceClient

        fs.service_client = BlobServiceClient.from_connection_string(
            conn_str, user_agent=_USER_AGENT, retry_total=sdk_retries
        )
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

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        root: str,
        *,
        azure_conn_env: str | None,
        **options: Any,
    ) -> None:
        super().__init__(fs, root, f"az://{root}", **options)
        self.azure_conn_env = azure_conn_env

    @classmethod
    def from_url(
        cls,
        parts: SplitResult,
        *,
        azure_conn_env: str | None = None,
        sdk_retries: int | None = None,
        **options: Any,
    ) -> AzureRepository:
        container = validate_container_name(parts.netloc)
        prefix = parts.path.strip("/")
        if prefix:
            validate_key(prefix)
        conn_str: str | None = None
        if azure_conn_env:
            conn_str = settings.environment_variable(azure_conn_env)
            if not conn_str:
                raise RepositoryError(
                    f"environment variable {azure_conn_env!r} (named by azure_conn_env) is not "
                    "set or empty"
                )
        env = settings.azure_environment()
        secrets = secret_parts(conn_str) + secret_parts(env.get("AZURE_STORAGE_CONNECTION_STRING"))
        for name, value in env.items():
            if name != "AZURE_STORAGE_CONNECTION_STRING" and len(value) >= 6:
                secrets += (value,)
        root = f"{container}/{prefix}" if prefix else container
        return cls(
            _filesystem(conn_str, sdk_retries),
            root,
            azure_conn_env=azure_conn_env,
            secrets=secrets,
            **options,
        )

    def __repr__(self) -> str:
        env = f", azure_conn_env={self.azure_conn_env!r}" if self.azure_conn_env else ""
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
