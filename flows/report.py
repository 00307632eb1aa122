"""The report every run publishes on itself: what the operator reads in the Prefect UI.

Each flow that a deployment or the command line starts ends by publishing one markdown
artifact on its own run (``<flow>-report``): counts first, then every failed input with its
reason, then the flow's own tables (products, QC values, published images). A parent flow
(``ingest-images``, ``process-night``) repeats its subflows' sections, so that the run the
operator opens needs no click-through. The run's final state message is the report's first
line (:func:`finish`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.states import Completed, State
from prefect.utilities.asyncutils import run_coro_as_sync

from astroflow.models.errors import ErrorStack, one_line

T = TypeVar("T")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[str] = ()
) -> str:
    """A markdown table (cells escaped, one line each; the ``numeric`` columns right-aligned);
    "none" when there are no rows."""
    rows = list(rows)
    if not rows:
        return "_none_\n"
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "".join("---:|" if h in numeric else "---|" for h in headers),
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def number(value: float | None) -> str:
    """How every report writes a number: 4 significant figures, in plain notation from 0.001
    to 10 million (``0.7698``, ``60000``, ``1235``), else scientific (``1.235e-05``); ``nan``
    for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return "nan"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        digits = max(0, 3 - math.floor(math.log10(magnitude)))
        rounded = float(f"{value:.4g}")  # 4 significant figures, then plain notation
        text = f"{rounded:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.3e}".replace("e-0", "e-").replace("e+0", "e+")


def qc_value(value: float | None) -> str:
    """A QC value as reports write numbers (:func:`number`)."""
    return number(value)


def qc_range(lo: float | None, hi: float | None) -> str:
    """A metric's acceptable range, ``[lo, hi]``; "-" when it has none."""
    if lo is None and hi is None:
        return "-"
    return f"[{number(lo)}, {number(hi)}]"


def failures_section(failures: Mapping[str, str]) -> str:
    """What failed, first in a report: one line per input with its reason (a list, not a
    table column, so that long reasons wrap within the page); empty when nothing failed."""
    if not failures:
        return ""
    lines = [f"- **{_cell(name)}**: {one_line(why)}" for name, why in sorted(failures.items())]
    return f"## Failures ({len(failures)})\n\n" + "\n".join(lines) + "\n"


def errors_section(errors: ErrorStack, title: str = "Failed inputs") -> str:
    """Every report of the stack, critical ones first (:meth:`ErrorStack.to_markdown`)."""
    return errors.to_markdown(title, level=3)


def publish(
    key: str,
    title: str,
    headline: str,
    sections: Sequence[str],
    failures: Mapping[str, str] | None = None,
) -> str:
    """Attach the report to the current run as the markdown artifact ``key``; returns it.
    It opens with the headline and the Failures section (``failures``: input -> reason)."""
    sections = [failures_section(failures or {}), *sections]
    markdown = f"# {title}\n\n**{headline}**\n\n" + "\n".join(s for s in sections if s)
    create_markdown_artifact(key=key, markdown=markdown, description=headline)
    return markdown


#: The state name of a run that completed with failed products or images.
COMPLETED_WITH_FAILURES = "Completed with failures"
#: The events every run emits when it finishes (an automation acts on them).
EVENT_COMPLETED = "astroflow.run.completed"
EVENT_DEGRADED = "astroflow.run.degraded"


def finish(
    headline: str,
    data: T,
    *,
    counts: Mapping[str, int] | None = None,
    failures: Mapping[str, str] | None = None,
    report_key: str = "",
) -> State[T]:
    """The run's final state: Completed, with the headline as its message (the run header);
    named "Completed with failures" when anything failed (``failures``: input -> reason).

    Signals: one WARNING log line per failure (the run's log), and Prefect events an
    automation can act on: ``astroflow.run.completed`` always (payload: ``counts``,
    ``report``), ``astroflow.run.degraded`` when anything failed (payload: counts, the failed
    inputs with their reasons, the report's key); the resource is the run
    (``astroflow.run.<flow run id>``), related to its flow run, flow and deployment.

    The value is written to the run's result storage (Prefect's local storage, under
    ``PREFECT_HOME``, unless a result storage is configured), so the state the API holds
    carries it. On a busy machine the client may retry a COMPLETED transition the server had
    already committed (a 503 from a locked SQLite API, a read timeout); the server refuses the
    duplicate and answers with the state it holds, and the caller (a parent flow, the command
    line) reads the value from there. Without the stored value that caller gets Prefect's
    ``MissingResult`` and a run that did its work ends Failed. A value that cannot be written
    (a full disk) is logged in one line and kept in memory only.
    """
    run = FlowRunContext.get()  # finish is what a flow function returns: always in a run
    failures = dict(failures or {})
    logger = get_run_logger()
    for name, reason in sorted(failures.items()):
        logger.warning("failed: %s: %s", name, reason)
    _signal(run, dict(counts or {}), failures, report_key)
    record = run.result_store.create_result_record(data)
    try:
        # as Prefect's engine writes a flow's result (its sync writer cannot write one)
        run_coro_as_sync(run.result_store.apersist_result_record(record))
    except OSError as exc:
        logger.warning("the run's value was not stored: %s", one_line(exc))
    if failures:
        return Completed(message=headline, data=record, name=COMPLETED_WITH_FAILURES)
    return Completed(message=headline, data=record)


def _signal(
    run: FlowRunContext, counts: dict[str, int], failures: dict[str, str], report_key: str
) -> None:
    """The run's events (see :func:`finish`)."""
    from prefect.events import emit_event

    resource = {
        "prefect.resource.id": f"astroflow.run.{run.flow_run.id}",
        "prefect.resource.name": run.flow_run.name,
        "astroflow.flow": run.flow.name,
    }
    payload: dict[str, Any] = {"counts": counts, "report": report_key}
    emit_event(event=EVENT_COMPLETED, resource=resource, payload=payload)
    if failures:
        failed = [{"input": name, "reason": why[:500]} for name, why in sorted(failures.items())]
        emit_event(
            event=EVENT_DEGRADED,
            resource=resource,
            payload={**payload, "failed": failed[:200], "failed_count": len(failed)},
        )
