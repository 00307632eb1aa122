"""Helpers shared by flows: collecting mapped results into an error stack, artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import PrefectFuture

from models.errors import ErrorReport, ErrorStack


def collect(
    futures: Sequence[PrefectFuture[Any]], inputs: Sequence[str], step: str
) -> tuple[dict[str, Any], ErrorStack]:
    """Wait for mapped task runs; results by input, and one error report per failed input.

    A failed run never stops the others: its exception becomes an :class:`ErrorReport`
    (expected when it is one of ours) with the input it concerned.
    """
    results: dict[str, Any] = {}
    reports: list[ErrorReport] = []
    for name, fut in zip(inputs, futures, strict=True):
        outcome = fut.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            reports.append(ErrorReport.from_exception(outcome, step, [name]))
        else:
            results[name] = outcome
    return results, ErrorStack(reports=tuple(reports))


def publish_errors(stack: ErrorStack, key: str, title: str) -> None:
    """Log the error summary and attach it to the run as a markdown artifact."""
    logger = get_run_logger()
    if stack:
        logger.warning("%s", stack.summary())
    create_markdown_artifact(
        key=key, markdown=stack.to_markdown(title), description=f"{title}: {len(stack)} error(s)"
    )
