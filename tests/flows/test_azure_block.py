"""A connection string kept in a Prefect block (prefect-azure's Azure Blob Storage
Credentials): an ingest publishes to Azurite with no AZURE_* variable set, and the string
appears in no flow run, task run or log the API holds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from astroflow.flows.ingest import ingest_images
from astroflow.storage.ingest.repository import open_repository
from astroflow.storage.ingest.repository_ref import RepositoryRef
from tests.conftest import AZURE_ENV, AZURITE_KEY
from tests.imagedata import tan_wcs, write_fits

pytestmark = [pytest.mark.prefect, pytest.mark.azure, pytest.mark.usefixtures("prefect_harness")]


def test_ingest_with_the_connection_string_in_a_block(
    tmp_path: Path,
    rng: np.random.Generator,
    azure_container: str,
    azurite: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect_azure import AzureBlobStorageCredentials

    AzureBlobStorageCredentials(connection_string=azurite).save("night-azure", overwrite=True)
    src = tmp_path / "src"
    src.mkdir()
    write_fits(src / "ngc7.fits", 300, 200, rng, tan_wcs(300, 200))
    url = f"az://{azure_container}/wwt"
    setup = open_repository(RepositoryRef(url=url, credential_env=AZURE_ENV))
    setup.write_bytes(
        "toasty-pipeline-config.yaml",
        f"source_type: folder\npublish_url_prefix: https://x.org/\nfolder_name: N\n"
        f"folder:\n  path: {src}\n".encode(),
    )
    for name in list(os.environ):
        if name.startswith("AZURE_") or name == AZURE_ENV:
            monkeypatch.delenv(name)
    _fetch, _process, publish, _reindex = ingest_images(
        url, str(tmp_path / "work"), azure_block="night-azure"
    )
    assert publish.done == ("ngc7",)
    assert "ngc7/index.wtml" in set(setup.find("ngc7"))
    from prefect.client.schemas.sorting import (
        FlowRunSort,
        LogSort,
        TaskRunSort,
    )

    with get_client(sync_client=True) as client:  # the latest runs and logs: this ingest's
        runs = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=20)
        texts = [r.model_dump_json() for r in runs]
        tasks = client.read_task_runs(sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=50)
        texts += [r.model_dump_json() for r in tasks]
        texts += [r.message for r in client.read_logs(sort=LogSort.TIMESTAMP_DESC, limit=200)]
    blob = "\n".join(texts)
    assert "night-azure" in blob  # the runs name the block ...
    assert AZURITE_KEY not in blob  # ... never what it holds
    assert AZURITE_KEY[:20] not in blob


def test_a_missing_block_is_one_clear_error(tmp_path: Path) -> None:
    from astroflow.models.errors import RepositoryError

    with pytest.raises(RepositoryError, match="no Prefect block 'nowhere'"):
        open_repository(RepositoryRef(url="az://night/wwt", credential_block="nowhere"))
