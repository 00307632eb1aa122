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
from collections.abc import Iterable, Sequence
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


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table (cells escaped, one line each); "none" when there are no rows."""
    rows = list(rows)
    if not rows:
        return "_none_\n"
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def qc_value(value: float | None) -> str:
    """A QC value rounded for reading: 4 significant digits, ``nan`` for a missing one."""
    if value is None or not math.isfinite(value):
        return "nan"
    return f"{value:.4g}"


def errors_section(errors: ErrorStack, title: str = "Failed inputs") -> str:
    """Every report of the stack, critical ones first (:meth:`ErrorStack.to_markdown`)."""
    return errors.to_markdown(title, level=3)


def publish(key: str, title: str, headline: str, sections: Sequence[str]) -> str:
    """Attach the report to the current run as the markdown artifact ``key``; returns it."""
    markdown = f"# {title}\n\n**{headline}**\n\n" + "\n".join(s for s in sections if s)
    create_markdown_artifact(key=key, markdown=markdown, description=headline)
    return markdown


def finish(headline: str, data: T) -> State[T]:
    """The run's final state: Completed, with the headline as its message (the run header).

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
    record = run.result_store.create_result_record(data)
    try:
        # as Prefect's engine writes a flow's result (its sync writer cannot write one)
        run_coro_as_sync(run.result_store.apersist_result_record(record))
    except OSError as exc:
        get_run_logger().warning("the run's value was not stored: %s", one_line(exc))
    return Completed(message=headline, data=record)
