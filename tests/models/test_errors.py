"""The error stack: reports from exceptions, merging, summaries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from astroflow.models.errors import (
    ErrorReport,
    ErrorStack,
    NoncriticalProcessingError,
    WcsError,
)


def _report(error: BaseException, inputs: tuple[str, ...] = ("a",)) -> ErrorReport:
    try:
        raise error
    except BaseException as exc:
        return ErrorReport.from_exception(exc, step="process", inputs=inputs)


@pytest.mark.parametrize(
    ("error", "expected", "critical"),
    [
        pytest.param(WcsError("no WCS"), True, True, id="ours"),
        pytest.param(NoncriticalProcessingError("thin"), True, False, id="ours-noncritical"),
        pytest.param(ZeroDivisionError("boom"), False, True, id="unexpected"),
    ],
)
def test_report_from_exception(error: BaseException, expected: bool, critical: bool) -> None:
    report = _report(error, ("img1", "img2"))
    assert report.expected is expected
    assert report.critical is critical
    assert report.inputs == ("img1", "img2")
    assert report.error_type == type(error).__name__
    # Unexpected errors keep their traceback so a bug can be found; ours do not need one.
    assert bool(report.traceback) is (not expected)
    assert report.step in report.one_line()


def test_reports_and_stacks_are_frozen() -> None:
    report = _report(WcsError("x"))
    with pytest.raises(ValidationError):
        report.message = "y"  # type: ignore[misc]
    stack = ErrorStack() + report
    with pytest.raises(ValidationError):
        stack.reports = ()  # type: ignore[misc]


def test_merge_keeps_every_report_in_order() -> None:
    a = ErrorStack() + _report(WcsError("1"), ("x",))
    b = ErrorStack() + [_report(NoncriticalProcessingError("2"), ("y",))]  # noqa: RUF005
    c = ErrorStack() + (ErrorStack() + _report(KeyError("3"), ("z", "x")))
    merged = ErrorStack.merge([a, b, c])
    assert [r.message for r in merged.reports] == ["1", "2", "'3'"]
    assert len(a + b + c) == 3
    assert merged.failed_inputs() == ["x", "z"]  # y only had a noncritical report
    assert merged.count(expected=True) == 2
    assert merged.count(expected=False) == 1
    assert len(merged.critical) == 2
    assert len(merged.noncritical) == 1
    assert not ErrorStack()
    assert merged


def test_summary_and_tables_escape_cells() -> None:
    stack = ErrorStack() + _report(WcsError("bad | pipe\nnewline\ttab"), ("../x",))
    summary = stack.summary()
    assert "1 error report(s): 1 critical" in summary
    assert "Failed inputs (1): ../x" in summary
    tsv = stack.to_tsv().splitlines()
    assert len(tsv) == 2
    assert tsv[1].count("\t") == 6
    md = stack.to_markdown("Ingest errors")
    assert md.startswith("## Ingest errors")
    assert "bad \\| pipe newline tab" in md
    assert stack.to_table()[0]["expected"] == "yes"
    assert ErrorStack().summary() == "No errors."
