"""astroflow's own warnings reach the run's log (what the Prefect UI shows), and only from
inside a run; runs are named after what they ran."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from prefect import flow, task

import astroflow.flows.common  # noqa: F401  (what every flow module imports)
from astroflow.storage.retry import RetryPolicy

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def _flaky_write() -> str:
    """A write that fails once on a dropped connection: the retry policy warns, then wins."""
    calls: list[int] = []

    def write() -> str:
        if not calls:
            calls.append(1)
            raise ConnectionError("connection reset by peer")
        return "written"

    return RetryPolicy(attempts=2, backoff=0.01).call(write, what="write m42/index.wtml")


@task
def flaky_task() -> str:
    return _flaky_write()


@flow
def flaky_flow() -> str:
    return _flaky_write() + flaky_task()


def _logs(flow_run_id: object) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> list:
        async with get_client() as client:
            return await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )

    return asyncio.run(read())


def test_a_retry_warning_is_in_the_runs_log() -> None:
    state = flaky_flow(return_state=True)
    assert state.result() == "writtenwritten"
    run_id = state.state_details.flow_run_id
    deadline = time.monotonic() + 30
    ours: list = []
    while time.monotonic() < deadline:
        ours = [log for log in _logs(run_id) if log.name == "astroflow.storage.retry"]
        if len(ours) >= 2:
            break
        time.sleep(0.5)
    assert len(ours) == 2  # the flow's and the task's
    assert all("write m42/index.wtml" in log.message for log in ours)
    assert all(log.level == logging.WARNING for log in ours)
    assert any(log.task_run_id is not None for log in ours)  # the task's, under its task run


def test_outside_a_run_a_warning_goes_to_the_usual_handlers_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Prefect's "no flow run id" warning would raise here
        assert _flaky_write() == "written"
    assert any("write m42/index.wtml" in r.getMessage() for r in caplog.records)


def test_runs_are_named_after_what_they_ran(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from astroflow.flows.cascade import calibration_cascade
    from astroflow.flows.organiser import prepare_workspace
    from tests.organiser_data import make_workspace

    ws = tmp_path / "night42"
    make_workspace(ws, np.random.default_rng(1), shape=(16, 16))
    prepared = prepare_workspace(str(ws), return_state=True)
    calibrated = calibration_cascade(str(ws), recipes=["mbias"], return_state=True)

    async def names() -> list[str]:
        async with get_client() as client:
            return [
                (await client.read_flow_run(s.state_details.flow_run_id)).name
                for s in (prepared, calibrated)
            ]

    assert asyncio.run(names()) == ["prepare-night42", "calibrate-night42-current"]


def _events(name: str, resource_id: str) -> list[dict]:
    from prefect.client.orchestration import get_client

    async def read() -> list[dict]:
        async with get_client() as client:
            response = await client._client.post(
                "/events/filter",
                json={
                    "filter": {
                        "event": {"name": [name]},
                        "resource": {"id": [resource_id]},
                    },
                    "limit": 50,
                },
            )
            response.raise_for_status()
            return response.json()["events"]

    return asyncio.run(read())


def test_a_night_with_a_failed_flat_completes_with_failures_and_says_so(tmp_path: Path) -> None:
    from astropy.io import fits

    from astroflow.flows.cascade import calibration_cascade
    from astroflow.flows.organiser import prepare_workspace
    from tests.organiser_data import make_workspace

    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=(48, 40))
    for path in ws.glob("n1_flatR_*.fits"):  # a dead region in night 1's R flats
        with fits.open(path, mode="update") as hdul:
            hdul[0].data[:20, :20] *= 0.05
    prepare_workspace(str(ws))
    state = calibration_cascade(str(ws), return_state=True)
    assert state.is_completed()
    assert state.name == "Completed with failures"
    (bad,) = state.result().failed
    run_id = state.state_details.flow_run_id
    resource = f"astroflow.run.{run_id}"
    deadline = time.monotonic() + 30
    degraded: list[dict] = []
    while time.monotonic() < deadline and not degraded:
        degraded = _events("astroflow.run.degraded", resource)
        time.sleep(0.5)
    (event,) = degraded
    assert event["payload"]["counts"]["failed"] == 1
    assert event["payload"]["report"] == "calibration-report"
    ((failed),) = event["payload"]["failed"]
    assert failed["input"] == bad
    assert failed["reason"].startswith("QC failed: ")
    related = {(r["prefect.resource.role"], r["prefect.resource.id"]) for r in event["related"]}
    assert ("flow-run", f"prefect.flow-run.{run_id}") in related
    assert _events("astroflow.run.completed", resource)  # every run says it finished
    logs = [log.message for log in _logs(run_id) if log.level == logging.WARNING]
    assert any(m.startswith(f"failed: {bad}: QC failed: ") for m in logs)


def test_a_clean_run_is_completed_and_not_degraded(tmp_path: Path) -> None:
    from astroflow.flows.cascade import calibration_cascade
    from astroflow.flows.organiser import prepare_workspace
    from tests.organiser_data import make_workspace

    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=(48, 40))
    prepare_workspace(str(ws))
    state = calibration_cascade(str(ws), recipes=["mbias"], return_state=True)
    assert state.name == "Completed"
    resource = f"astroflow.run.{state.state_details.flow_run_id}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _events("astroflow.run.completed", resource):
        time.sleep(0.5)
    assert _events("astroflow.run.completed", resource)
    assert not _events("astroflow.run.degraded", resource)


@pytest.mark.azure
def test_prefect_flow_run_logs_show_the_retry_of_a_dropped_azure_connection(
    tmp_path: Path, azurite: str, azure_container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ingest stage whose Azure endpoint resets its first connections: astroflow's retry
    warning is in what `prefect flow-run logs` prints for the run. (The SDK's transport
    absorbs the first two resets by opening new connections; the third reaches the
    repository's retry policy.)"""
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    from astroflow.flows.ingest import fetch_images
    from astroflow.storage.ingest.repository import open_repository
    from astroflow.storage.ingest.repository_ref import RepositoryRef
    from tests.conftest import AZURE_ENV, AZURITE_ACCOUNT
    from tests.dropping_proxy import DroppingProxy

    src = tmp_path / "src"
    src.mkdir()
    url = f"az://{azure_container}/wwt"
    open_repository(RepositoryRef(url=url, credential_env=AZURE_ENV)).write_bytes(
        "toasty-pipeline-config.yaml",
        f"source_type: folder\npublish_url_prefix: https://x.org/\nfolder_name: N\n"
        f"folder:\n  path: {src}\n".encode(),
    )
    port = int(azurite.split("BlobEndpoint=http://127.0.0.1:", 1)[1].split("/", 1)[0])
    proxy = DroppingProxy(port, drop=3)
    flaky = azurite.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{proxy.port}/")
    assert f"/{AZURITE_ACCOUNT}" in flaky
    monkeypatch.setenv("FLAKY_AZ", flaky)
    try:
        state = fetch_images(url, str(tmp_path / "work"), "FLAKY_AZ", return_state=True)
    finally:
        proxy.close()
    assert state.is_completed(), state
    assert proxy.dropped == 3
    run_id = str(state.state_details.flow_run_id)
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    deadline = time.monotonic() + 30
    while True:  # the log worker sends in batches
        shown = subprocess.run(
            [prefect, "flow-run", "logs", run_id], env=env, capture_output=True, text=True
        ).stdout
        if "retry 1 of" in shown or time.monotonic() > deadline:
            break
        time.sleep(1)
    line = next((x for x in shown.splitlines() if "retry 1 of" in x), "")
    assert "toasty-pipeline-config.yaml" in line, shown[-3000:]
    assert "WARNING" in line
