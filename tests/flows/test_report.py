"""A run's final state (flows/report.finish): its headline, and its value when the API is busy."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from astroflow.flows import report
from tests.lossy_api import LossyApi

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


@flow(name="test-report-child")
def _child(n: int) -> dict[str, int]:
    return report.finish(f"counted {n}", {"twice": 2 * n})


@flow(name="test-report-parent")
def _parent(n: int) -> int:
    value = _child(n)["twice"] + 1
    return report.finish(f"parent of {n}", value)


def _runs(ids: list[str]) -> dict[str, object]:
    """The flow runs of these ids, as the API holds them, by id."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    return {str(r.id): r for r in runs}


def test_the_value_survives_a_lost_completed_response(prefect_harness: LossyApi) -> None:
    """The server commits COMPLETED, its answer is lost, the client's retry is refused as a
    duplicate and gets the stored state back: the value must still reach the caller."""
    with prefect_harness.losing() as dropped:
        assert _parent(20) == 41
    # both runs' first COMPLETED answers were lost (the proxy did its job)
    assert len(dropped) == 2
    runs = _runs(dropped)
    messages = sorted(runs[i].state.message for i in dropped)
    assert messages == ["counted 20", "parent of 20"]
    assert all(runs[i].state.is_completed() for i in dropped)


def test_the_value_is_readable_from_the_api() -> None:
    """What an operator's script reads back for a finished run is the value, not an error."""
    state = _child(3, return_state=True)
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(state.state_details.flow_run_id).state
    assert stored.message == "counted 3"
    assert stored.result() == {"twice": 6}


def test_a_full_result_storage_costs_only_the_stored_copy(
    small_disk, caplog: pytest.LogCaptureFixture
) -> None:
    """No room for the value: one warning line; the run still completes with its headline
    and its caller still gets the value (kept in memory)."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from tests.conftest import fill_leaving

    full = small_disk(1)
    fill_leaving(full, 0)
    with temporary_settings(updates={PREFECT_RESULTS_LOCAL_STORAGE_PATH: full}):
        state = _child(4, return_state=True)
    assert state.is_completed()
    assert state.message == "counted 4"
    assert state.result() == {"twice": 8}
    warnings = [r.getMessage() for r in caplog.records if "was not stored" in r.getMessage()]
    assert len(warnings) == 1
    assert "No space left on device" in warnings[0]
    assert "\n" not in warnings[0]
