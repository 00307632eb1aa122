"""Helpers shared by flows: collecting mapped results into an error stack, artifacts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.futures import PrefectFuture

from astroflow.models.errors import AstroflowError, ErrorReport, ErrorStack
from astroflow.tasks.logs import send_astroflow_logs_to_runs


class ExpectedErrorsInOneLine(logging.Filter):
    """Drop the traceback of log records about an error we raised on purpose (an
    :class:`AstroflowError`: bad input we recognised); unexpected errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        # (a task that returns a Failed state is logged with an empty exc_info: "NoneType")
        if record.exc_info and (
            record.exc_info[1] is None or isinstance(record.exc_info[1], AstroflowError)
        ):
            record.exc_info = None
            record.exc_text = None
        return True


def log_expected_errors_in_one_line() -> None:
    """Install :class:`ExpectedErrorsInOneLine` on Prefect's run loggers (once)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedErrorsInOneLine) for f in logger.filters):
            logger.addFilter(ExpectedErrorsInOneLine())


log_expected_errors_in_one_line()
send_astroflow_logs_to_runs()  # astroflow's own warnings in the run's log (the UI)


def collect(
    futures: Sequence[PrefectFuture[Any]],
    inputs: Sequence[str],
    step: str,
    *,
    progress: bool = True,
) -> tuple[dict[str, Any], ErrorStack]:
    """Wait for mapped task runs; results by input, and one error report per failed input.

    A failed run never stops the others: its exception becomes an :class:`ErrorReport`
    (expected when it is one of ours) with the input it concerned. With ``progress``, a
    Prefect progress artifact (``<step>-progress``) shows the share of inputs finished.
    """
    results: dict[str, Any] = {}
    reports: list[ErrorReport] = []
    artifact_id = None
    if progress and futures:
        artifact_id = create_progress_artifact(
            progress=0.0,
            key=f"{step}-progress".lower().replace("_", "-"),
            description=f"{step}: share of {len(futures)} input(s) finished",
        )
    for n, (name, fut) in enumerate(zip(inputs, futures, strict=True), start=1):
        outcome = fut.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            reports.append(ErrorReport.from_exception(outcome, step, [name]))
        else:
            results[name] = outcome
        if artifact_id is not None:
            update_progress_artifact(artifact_id, progress=100.0 * n / len(futures))
    return results, ErrorStack(reports=tuple(reports))


def publish_errors(stack: ErrorStack, key: str, title: str) -> None:
    """Log the error summary and attach it to the run as a markdown artifact."""
    logger = get_run_logger()
    if stack:
        logger.warning("%s", stack.summary())
    create_markdown_artifact(
        key=key, markdown=stack.to_markdown(title), description=f"{title}: {len(stack)} error(s)"
    )
