"""astroflow's own warnings reach the run's log (what the Prefect UI shows), and only from
inside a run; runs are named after what they ran."""

from __future__ import annotations

import asyncio
import logging
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
