"""A repository in an Azure Blob container through adlfs: ``az://container/prefix``, or
adlfs's own form naming the storage account, ``abfs://container@account.dfs.core.windows.net/
prefix`` (also ``az://``, ``abfss://``, ``.blob.`` hosts, and a bare ``container@account``).

Credentials come from the environment (or a Prefect block, :mod:`storage.credentials`), never
from arguments, in adlfs's order:

1. a connection string: the variable the handle names (``credential_env``, toasty's
   ``--azure-conn-env``), the block the handle names (``credential_block``), or
   ``AZURE_STORAGE_CONNECTION_STRING``;
2. else the account (the URL's, or ``AZURE_STORAGE_ACCOUNT_NAME``) with
   ``AZURE_STORAGE_ACCOUNT_KEY``, or ``AZURE_STORAGE_SAS_TOKEN``, or a service principal
   (``AZURE_STORAGE_CLIENT_ID``, ``AZURE_STORAGE_CLIENT_SECRET``, ``AZURE_STORAGE_TENANT_ID``),
   or anonymous access (``AZURE_STORAGE_ANON=true``), else ``DefaultAzureCredential``
   (managed identity, ``az login``, ...). The blob endpoint is
   ``https://<account>.blob.core.windows.net`` unless ``ASTROFLOW_AZURE_BLOB_ENDPOINT`` names
   another (Azurite, a sovereign cloud, a private endpoint).

Every route gets the same client: the settings' connect and read timeouts and
``azure_sdk_retries`` retries of the SDK (default none: the repository's own retries and
circuit breaker do the retrying). Secrets never appear in reprs, logs, exceptions or pickles
(every credential variable adlfs and azure-identity read is redacted): a pickled repository
re-reads the environment when it is unpickled.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import fsspec
from azure.core import exceptions as azure_errors

from astroflow.models import settings
from astroflow.models.errors import RepositoryError
from astroflow.models.settings import Settings
from astroflow.storage.credentials import load_azure_block
from astroflow.storage.ingest.repository.base import Repository, content_type_for
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.keys import validate_container_name, validate_key

#: Azure credential variables adlfs and azure-identity read; their values are redacted from
#: every message.
CREDENTIAL_VARIABLES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
)
#: Variables that name an account or identity (read, not secret).
IDENTITY_VARIABLES = (
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_CLIENT_ID",
    "AZURE_STORAGE_TENANT_ID",
    "AZURE_STORAGE_ANON",
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


@dataclass(frozen=True)
class AzureLocation:
    """Where a repository lies: container, prefix, and the account when the URL names it."""

    container: str
    prefix: str
    account: str | None = None
    host: str | None = None  # the URL's account host (``acct.dfs.core.windows.net``)


def parse_azure_url(url: str) -> AzureLocation:
    """The container, prefix and account of an Azure repository URL (see the module).

    Raises
    ------
    InvalidKeyError
        For an invalid container name or prefix.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    account = host = None
    if "@" in netloc:
        container, _, host = netloc.partition("@")
        account = host.split(".", 1)[0] or None
    else:
        container = netloc
    container = validate_container_name(container)
    prefix = parts.path.strip("/")
    if prefix:
        validate_key(prefix)
    return AzureLocation(container, prefix, account, host or None)


@dataclass(frozen=True)
class AzureCredential:
    """How to reach the account: one route, and what must never be shown."""

    route: str  # "connection string in NAME", "account key", "SAS token", ...
    connection_string: str | None = None
    account_url: str | None = None
    credential: Any = None  # for the SDK: a key, a SAS, a token credential, or None
    secrets: tuple[str, ...] = ()


def _account_of(conn_str: str) -> str | None:
    for field in conn_str.split(";"):
        name, _, value = field.partition("=")
        if name.strip().lower() == "accountname" and value.strip():
            return value.strip()
    return None


def _account_url(location: AzureLocation, account: str) -> str:
    endpoint = Settings().azure_blob_endpoint
    if endpoint:
        return endpoint.format(account=account).rstrip("/")
    if location.host and "." in location.host:
        return "https://" + location.host.replace(".dfs.", ".blob.", 1)
    return f"https://{account}.blob.core.windows.net"


def resolve_credential(location: AzureLocation, ref: RepositoryRef) -> AzureCredential:
    """The credential route for ``location`` (see the module), with every secret it
    involves (and every credential variable that is set) for redaction.

    Raises
    ------
    RepositoryError
        For a variable or block the handle names that is missing or empty, a connection
        string of another account than the URL's, or no credential at all.
    """
    env = settings.environment_values(CREDENTIAL_VARIABLES + IDENTITY_VARIABLES)
    secrets: tuple[str, ...] = secret_parts(env.get("AZURE_STORAGE_CONNECTION_STRING"))
    secrets += tuple(v for k, v in env.items() if k in CREDENTIAL_VARIABLES and len(v) >= 6)
    conn_str, where = None, ""
    if ref.credential_env:
        conn_str, where = settings.environment_variable(ref.credential_env), ref.credential_env
        if not conn_str:
            raise RepositoryError(
                f"environment variable {ref.credential_env!r} (named for the repository's "
                "connection string) is not set or empty"
            )
    elif ref.credential_block:
        conn_str, block_url = load_azure_block(ref.credential_block)
        where = f"block {ref.credential_block!r}"
        if not conn_str:  # an account URL: the account's DefaultAzureCredential
            from azure.identity.aio import DefaultAzureCredential

            return AzureCredential(
                f"{where} (DefaultAzureCredential)",
                account_url=block_url,
                credential=DefaultAzureCredential(),
                secrets=secrets,
            )
    elif env.get("AZURE_STORAGE_CONNECTION_STRING"):
        conn_str, where = env["AZURE_STORAGE_CONNECTION_STRING"], "AZURE_STORAGE_CONNECTION_STRING"
    if conn_str:
        secrets += secret_parts(conn_str)
        named = _account_of(conn_str)
        if location.account and named and named != location.account:
            raise RepositoryError(
                f"the repository URL names the storage account {location.account!r} but the "
                f"connection string in {where} is for {named!r}"
            )
        return AzureCredential(f"connection string in {where}", conn_str, secrets=secrets)
    account = location.account or env.get("AZURE_STORAGE_ACCOUNT_NAME")
    if not account:
        raise RepositoryError(
            "no Azure credential for the repository: give azure_conn_env (a variable holding a "
            "connection string) or azure_block, set AZURE_STORAGE_CONNECTION_STRING, or name "
            "the account (abfs://container@account.dfs.core.windows.net/..., or "
            "AZURE_STORAGE_ACCOUNT_NAME) with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN, "
            "a service principal or DefaultAzureCredential"
        )
    url = _account_url(location, account)
    if env.get("AZURE_STORAGE_ACCOUNT_KEY"):
        from azure.core.credentials import AzureNamedKeyCredential

        key = AzureNamedKeyCredential(account, env["AZURE_STORAGE_ACCOUNT_KEY"])
        return AzureCredential("account key", account_url=url, credential=key, secrets=secrets)
    if env.get("AZURE_STORAGE_SAS_TOKEN"):
        from azure.core.credentials import AzureSasCredential

        sas = AzureSasCredential(env["AZURE_STORAGE_SAS_TOKEN"].lstrip("?"))
        return AzureCredential("SAS token", account_url=url, credential=sas, secrets=secrets)
    if env.get("AZURE_STORAGE_CLIENT_ID") and env.get("AZURE_STORAGE_CLIENT_SECRET"):
        from azure.identity.aio import ClientSecretCredential

        principal = ClientSecretCredential(
            tenant_id=env.get("AZURE_STORAGE_TENANT_ID", ""),
            client_id=env["AZURE_STORAGE_CLIENT_ID"],
            client_secret=env["AZURE_STORAGE_CLIENT_SECRET"],
        )
        return AzureCredential(
            "service principal", account_url=url, credential=principal, secrets=secrets
        )
    if env.get("AZURE_STORAGE_ANON", "false").lower() not in ("false", "0", "f", ""):
        return AzureCredential("anonymous", account_url=url, secrets=secrets)
    from azure.identity.aio import DefaultAzureCredential

    return AzureCredential(
        "DefaultAzureCredential",
        account_url=url,
        credential=DefaultAzureCredential(),
        secrets=secrets,
    )


def _filesystem(credential: AzureCredential, account: str | None) -> fsspec.AbstractFileSystem:
    """adlfs's filesystem on a client of our own: the route's credential, the settings'
    connect/read timeouts, and ``azure_sdk_retries`` retries from 1 s (the SDK's default
    policy retries each request 3 times from 15 s: ~78 s for a dead endpoint, before ours).

    Raises
    ------
    RepositoryError
        For a malformed connection string (named by where it came from).
    """
    from adlfs import AzureBlobFileSystem
    from adlfs.spec import _USER_AGENT
    from adlfs.utils import close_credential
    from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry
    from fsspec.asyn import sync

    config = Settings()
    bounded: dict[str, Any] = {
        "user_agent": _USER_AGENT,
        "retry_policy": ExponentialRetry(
            initial_backoff=1, increment_base=2, retry_total=config.azure_sdk_retries
        ),
        "connection_timeout": config.azure_connect_timeout,
        "read_timeout": config.azure_read_timeout,
    }
    try:
        if credential.connection_string:
            client = BlobServiceClient.from_connection_string(
                credential.connection_string, **bounded
            )
            account = _account_of(credential.connection_string) or account
        else:
            client = BlobServiceClient(
                credential.account_url or "", credential=credential.credential, **bounded
            )
    except (ValueError, TypeError, KeyError) as exc:
        # the SDK's message can quote the string: say only what and where
        where = credential.route.removeprefix("connection string in ")
        raise RepositoryError(
            f"the Azure connection string in {where} is malformed ({type(exc).__name__}); "
            "expected 'DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;"
            "BlobEndpoint=...'"
        ) from None
    # adlfs's own client (anonymous: it reads no credential of its own) is replaced by ours
    fs = AzureBlobFileSystem(
        account_name=account or "account",
        anon=True,
        skip_instance_cache=True,
        connection_timeout=config.azure_connect_timeout,
        read_timeout=config.azure_read_timeout,
    )
    fs.service_client = client
    if credential.credential is not None and hasattr(credential.credential, "close"):
        fs.credential = credential.credential
        weakref.finalize(fs, sync, fs.loop, close_credential, fs)
    return fs


class AzureRepository(Repository):
    """Blobs under ``container/prefix``; uploads overwrite and carry their Content-Type."""

    backend: ClassVar[str] = "azure"
    account_in_url: ClassVar[bool] = True
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
        self.url = ref.url.rstrip("/")  # as the user wrote it (both forms)

    @classmethod
    def from_ref(cls, ref: RepositoryRef, **options: Any) -> AzureRepository:
        location = parse_azure_url(ref.url)
        credential = resolve_credential(location, ref)
        root = f"{location.container}/{location.prefix}" if location.prefix else location.container
        fs = _filesystem(credential, location.account)
        return cls(fs, root, ref, secrets=credential.secrets, **options)

    def __repr__(self) -> str:
        env = f", credential_env={self.ref.credential_env!r}" if self.ref.credential_env else ""
        if self.ref.credential_block:
            env += f", credential_block={self.ref.credential_block!r}"
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
