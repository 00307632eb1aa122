"""Azure repositories reached every usual way, against Azurite: adlfs's URL form naming the
account, a connection string, an account key, a SAS token; each with the same bounded client
(timeouts, no SDK retries) and the circuit breaker; every credential variable redacted."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from astroflow.models.errors import RepositoryError, RepositoryUnreachableError
from astroflow.storage.ingest.repository import open_repository
from astroflow.storage.ingest.repository.azure import (
    CREDENTIAL_VARIABLES,
    parse_azure_url,
    resolve_credential,
)
from astroflow.storage.ingest.repository_ref import RepositoryRef
from tests.conftest import AZURE_ENV, AZURITE_ACCOUNT, AZURITE_KEY, Azurite

pytestmark = pytest.mark.azure

HOST = f"{AZURITE_ACCOUNT}.dfs.core.windows.net"


def _endpoint(conn: str) -> str:
    """Azurite's blob endpoint as ASTROFLOW_AZURE_BLOB_ENDPOINT takes it."""
    blob = next(f for f in conn.split(";") if f.startswith("BlobEndpoint="))
    return blob.removeprefix("BlobEndpoint=").replace(AZURITE_ACCOUNT, "{account}")


@pytest.fixture
def no_azure_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No AZURE_* variable but those a test sets."""
    import os

    for name in list(os.environ):
        if name.startswith("AZURE_") or name == "ASTROFLOW_AZURE_BLOB_ENDPOINT":
            monkeypatch.delenv(name)
    return monkeypatch


def _round_trip(url: str, credential_env: str | None = None) -> None:
    repo = open_repository(RepositoryRef(url=url, credential_env=credential_env))
    repo.write_bytes("probe/a.txt", b"hello")
    assert repo.read_bytes("probe/a.txt") == b"hello"
    assert "probe" in repo.list_folders()
    written = repo.modified("probe/a.txt")  # the blob's Last-Modified (reindex order)
    assert written is not None
    assert abs((datetime.now(UTC) - written).total_seconds()) < 3600


@pytest.mark.parametrize(
    "form",
    ["abfs://{c}@{host}/wwt", "az://{c}@{host}/wwt", "abfss://{c}@{account}/wwt"],
    ids=["abfs-dfs-host", "az-dfs-host", "abfss-bare-account"],
)
def test_the_url_naming_the_account_with_a_connection_string(
    azure_container: str, form: str
) -> None:
    url = form.format(c=azure_container, host=HOST, account=AZURITE_ACCOUNT)
    location = parse_azure_url(url)
    assert (location.container, location.prefix, location.account) == (
        azure_container,
        "wwt",
        AZURITE_ACCOUNT,
    )
    _round_trip(url, AZURE_ENV)
    # the same blobs as the short form
    short = open_repository(
        RepositoryRef(url=f"az://{azure_container}/wwt", credential_env=AZURE_ENV)
    )
    assert short.read_bytes("probe/a.txt") == b"hello"


def test_a_connection_string_of_another_account_is_refused(azure_container: str) -> None:
    url = f"abfs://{azure_container}@otheraccount.dfs.core.windows.net/wwt"
    with pytest.raises(RepositoryError, match=r"otheraccount.*devstoreaccount1"):
        open_repository(RepositoryRef(url=url, credential_env=AZURE_ENV))


def test_account_key_route(
    azurite: str, azure_container: str, no_azure_env: pytest.MonkeyPatch
) -> None:
    no_azure_env.setenv("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)
    no_azure_env.setenv("ASTROFLOW_AZURE_BLOB_ENDPOINT", _endpoint(azurite))
    url = f"abfs://{azure_container}@{HOST}/wwt"
    assert resolve_credential(parse_azure_url(url), RepositoryRef(url=url)).route == "account key"
    _round_trip(url)


def test_sas_token_route(
    azurite: str, azure_container: str, no_azure_env: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        AZURITE_ACCOUNT,
        AZURITE_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True, write=True, delete=True, list=True, add=True, create=True
        ),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    no_azure_env.setenv("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT)
    no_azure_env.setenv("AZURE_STORAGE_SAS_TOKEN", sas)
    no_azure_env.setenv("ASTROFLOW_AZURE_BLOB_ENDPOINT", _endpoint(azurite))
    url = f"az://{azure_container}/wwt"
    credential = resolve_credential(parse_azure_url(url), RepositoryRef(url=url))
    assert credential.route == "SAS token"
    assert sas in credential.secrets
    _round_trip(url)


def test_no_credential_at_all_is_one_clear_error(no_azure_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(RepositoryError, match=r"no Azure credential.*azure_conn_env"):
        open_repository("az://container/wwt")


@pytest.mark.parametrize("name", CREDENTIAL_VARIABLES)
def test_every_credential_variable_is_redacted(name: str, no_azure_env: pytest.MonkeyPatch) -> None:
    value = (
        f"AccountName={AZURITE_ACCOUNT};AccountKey=k-value-1"
        if "CONNECTION" in name
        else "value-of-" + name
    )
    no_azure_env.setenv(name, value)
    url = f"abfs://container@{HOST}/wwt"  # the account: every route can be resolved
    secrets = resolve_credential(parse_azure_url(url), RepositoryRef(url=url)).secrets
    assert value in secrets
    if "CONNECTION" in name:
        assert "k-value-1" in secrets  # and its key alone


@pytest.mark.parametrize("route", ["connection-string", "account-key"])
def test_every_route_is_bounded_and_a_dead_endpoint_stops_it(
    own_azurite: Azurite, no_azure_env: pytest.MonkeyPatch, route: str
) -> None:
    from azure.storage.blob import BlobServiceClient

    BlobServiceClient.from_connection_string(own_azurite.conn).create_container("night")
    url = f"abfs://night@{HOST}/wwt"
    if route == "connection-string":
        no_azure_env.setenv("NIGHT_AZ", own_azurite.conn)
        ref = RepositoryRef(url=url, credential_env="NIGHT_AZ")
    else:
        no_azure_env.setenv("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)
        no_azure_env.setenv("ASTROFLOW_AZURE_BLOB_ENDPOINT", _endpoint(own_azurite.conn))
        ref = RepositoryRef(url=url)
    repo = open_repository(ref)
    repo.write_bytes("a.txt", b"x")
    # the client: our timeouts, no retries of the SDK's own (the repository retries)
    config = repo._fs.service_client._config  # the SDK client we built
    assert config.retry_policy.total_retries == 0
    assert config.transport.connection_config.timeout == 5.0
    assert config.transport.connection_config.read_timeout == 20.0
    own_azurite.kill()
    started = time.monotonic()
    with pytest.raises(RepositoryUnreachableError, match="is unreachable"):
        repo.require_reachable()
    print(f"{route}: dead endpoint detected in {time.monotonic() - started:.1f} s")
