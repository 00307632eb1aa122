"""``astroflow serve`` reads the deployments file shipped in the package and passes every
schedule field Prefect takes through."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from astroflow.flows.serve import PREFECT_YAML, build_deployments
from astroflow.models.errors import ConfigError

NIGHTLY = """    schedules:
      - cron: "0 8 * * *"
        timezone: UTC
        active: false"""

TWO_SCHEDULES = """    schedules:
      - interval: 3600
        anchor_date: "2026-12-01T20:00:00+00:00"
        timezone: UTC
        active: false
        slug: hourly
        parameters: {limit: 5}
      - rrule: "FREQ=WEEKLY;BYDAY=MO,WE,FR"
        timezone: America/Santiago
        active: true
        parameters: {force: true}"""


def test_the_deployments_file_comes_with_the_package() -> None:
    import astroflow.deployments

    assert Path(str(PREFECT_YAML)).parent == Path(astroflow.deployments.__file__).parent
    assert "nightly-ingest" in PREFECT_YAML.read_text(encoding="utf-8")


def test_interval_and_rrule_schedules_keep_their_fields(tmp_path: Path) -> None:
    text = PREFECT_YAML.read_text(encoding="utf-8")
    assert NIGHTLY in text
    copy = tmp_path / "prefect.yaml"
    copy.write_text(text.replace(NIGHTLY, TWO_SCHEDULES, 1))
    served = {d.name: d for d in build_deployments(copy)}
    hourly, weekly = served["nightly-ingest-served"].schedules
    assert hourly.schedule.interval == timedelta(hours=1)
    assert hourly.schedule.anchor_date.isoformat().startswith("2026-12-01T20:00:00")
    assert (hourly.slug, hourly.parameters, hourly.active) == ("hourly", {"limit": 5}, False)
    assert weekly.schedule.rrule.endswith("FREQ=WEEKLY;BYDAY=MO,WE,FR")  # (Prefect adds DTSTART)
    assert weekly.schedule.timezone == "America/Santiago"
    assert (weekly.parameters, weekly.active) == ({"force": True}, True)


def test_an_unknown_schedule_field_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "prefect.yaml"
    copy.write_text(
        PREFECT_YAML.read_text(encoding="utf-8").replace(NIGHTLY, NIGHTLY + "\n        every: 3", 1)
    )
    with pytest.raises(ConfigError, match=r"'nightly-ingest': unknown schedule field\(s\) every"):
        build_deployments(copy)


def test_the_shipped_automations_are_what_prefect_accepts() -> None:
    """``prefect automation create --from-file`` validates each entry as ``AutomationCore``."""
    import uuid

    import yaml
    from prefect.events.schemas.automations import AutomationCore

    from tests.conftest import ROOT

    text = (ROOT / "deployments" / "automations.yaml").read_text(encoding="utf-8")
    assert "WEBHOOK_BLOCK_ID" in text  # (no secret and no block id of anyone's in the file)
    entries = yaml.safe_load(text.replace("WEBHOOK_BLOCK_ID", str(uuid.uuid4())))["automations"]
    automations = [AutomationCore.model_validate(entry) for entry in entries]
    degraded, failed = automations
    assert degraded.trigger.expect == {"astroflow.run.degraded"}
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert all(a.actions[0].type == "call-webhook" for a in automations)
