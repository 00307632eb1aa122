"""One error hierarchy, error reports and the error stack (after mirar).

Every input (an image, a raw frame, a download) is processed unless it fails. A failure becomes
an :class:`ErrorReport`; reports are collected in an :class:`ErrorStack` that says which inputs
failed, why, and whether the error was *expected* (one of ours, raised on purpose for bad input)
or *unexpected* (a bug or an environmental fault).

Two kinds of failure:

``ProcessingError``
    Critical for the input it concerns: that input stops here, the others carry on.
``NoncriticalProcessingError``
    Recorded, and the input goes on (a missing optional keyword, a recovered retry).
"""

from __future__ import annotations

import traceback as _traceback
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AstroflowError",
    "BusyError",
    "CalibrationError",
    "ConfigError",
    "DownloadError",
    "ErrorReport",
    "ErrorStack",
    "HashMismatchError",
    "InvalidKeyError",
    "NoncriticalProcessingError",
    "ProcessingError",
    "RepositoryError",
    "WcsError",
    "one_line",
]


class AstroflowError(Exception):
    """Base class of every error astroflow raises on purpose."""


class ProcessingError(AstroflowError):
    """A critical failure of one input: the input stops, the others go on."""


class NoncriticalProcessingError(AstroflowError):
    """A failure worth recording that does not stop the input it concerns."""


class ConfigError(AstroflowError, ValueError):
    """A configuration or rules file is missing, malformed or invalid (names file and key)."""


class InvalidKeyError(AstroflowError, ValueError):
    """A repository key, image id or container name is unsafe or malformed."""


class RepositoryError(AstroflowError):
    """A repository could not be opened, read or written."""


class RepositoryUnreachableError(RepositoryError):
    """The repository does not answer (refused, reset, timed out): the run cannot proceed."""


class BusyError(AstroflowError):
    """A work folder or workspace is held by another live run: this run did nothing."""


class ReviewTimeoutError(AstroflowError):
    """Nobody answered a review before its timeout: nothing was published."""


class WcsError(ProcessingError):
    """An image has no usable celestial TAN WCS."""


class DownloadError(ProcessingError):
    """A remote file could not be downloaded from any of its URLs."""


class HashMismatchError(DownloadError):
    """Downloaded bytes do not match the expected size or hash."""


class CalibrationError(ProcessingError):
    """A calibration recipe could not make its product."""


class AstrometryError(ProcessingError):
    """A frame has no astrometric solution: the solver or its index files are missing, or it
    did not solve (critical only where the rules require a solution)."""


def one_line(exc: BaseException | str) -> str:
    """An error's text on one line (wcslib and astropy write several)."""
    return " ".join(str(exc).split())


def _now() -> datetime:
    return datetime.now(UTC)


class ErrorReport(BaseModel):
    """What failed, where, for which inputs, and whether we expected it.

    Attributes
    ----------
    error_type
        Class name of the exception (``"WcsError"``).
    message
        The exception's message.
    step
        The pipeline step that raised it (``"process"``, ``"mbias"``, ...).
    inputs
        The inputs it concerns (image ids, file paths, URLs).
    expected
        True when the error is one of ours (an :class:`AstroflowError`): bad input handled on
        purpose. False for anything else (a bug or an environmental fault).
    critical
        True when the inputs stopped here; False for a :class:`NoncriticalProcessingError`.
    time
        When the report was made (UTC).
    traceback
        The formatted traceback for unexpected errors; empty for expected ones.
    """

    model_config = ConfigDict(frozen=True)

    error_type: str
    message: str
    step: str
    inputs: tuple[str, ...] = ()
    expected: bool
    critical: bool = True
    time: datetime = Field(default_factory=_now)
    traceback: str = ""

    @classmethod
    def from_exception(
        cls, error: BaseException, step: str, inputs: Iterable[str] = ()
    ) -> ErrorReport:
        """Make a report of ``error`` raised by ``step`` while handling ``inputs``."""
        expected = isinstance(error, AstroflowError)
        tb = ""
        if not expected:
            tb = "".join(_traceback.format_exception(type(error), error, error.__traceback__))
        return cls(
            error_type=type(error).__name__,
            message=str(error) or type(error).__name__,
            step=step,
            inputs=tuple(str(i) for i in inputs),
            expected=expected,
            critical=not isinstance(error, NoncriticalProcessingError),
            traceback=tb,
        )

    def one_line(self) -> str:
        """A one-line human summary."""
        kind = "expected" if self.expected else "UNEXPECTED"
        crit = "" if self.critical else " (noncritical)"
        return (
            f"[{self.step}] {', '.join(self.inputs) or '-'}: "
            f"{self.error_type}: {self.message} [{kind}{crit}]"
        )


def _cell(text: str) -> str:
    """Escape a value for a TSV or markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


class ErrorStack(BaseModel):
    """An immutable collection of :class:`ErrorReport`.

    Stacks merge with ``+`` without losing any report (critical or not), unlike mirar's.
    """

    model_config = ConfigDict(frozen=True)

    reports: tuple[ErrorReport, ...] = ()

    def __add__(self, other: ErrorStack | ErrorReport | Sequence[ErrorReport]) -> ErrorStack:
        if isinstance(other, ErrorStack):
            extra = other.reports
        elif isinstance(other, ErrorReport):
            extra = (other,)
        else:
            extra = tuple(other)
        return ErrorStack(reports=self.reports + extra)

    def __len__(self) -> int:
        return len(self.reports)

    def __bool__(self) -> bool:
        return bool(self.reports)

    @classmethod
    def merge(cls, stacks: Iterable[ErrorStack]) -> ErrorStack:
        """Concatenate many stacks into one, keeping every report in order."""
        reports: list[ErrorReport] = []
        for stack in stacks:
            reports.extend(stack.reports)
        return cls(reports=tuple(reports))

    @property
    def critical(self) -> tuple[ErrorReport, ...]:
        """Reports that stopped their inputs."""
        return tuple(r for r in self.reports if r.critical)

    @property
    def noncritical(self) -> tuple[ErrorReport, ...]:
        """Reports recorded while their inputs went on."""
        return tuple(r for r in self.reports if not r.critical)

    def failed_inputs(self) -> list[str]:
        """Inputs stopped by a critical report, sorted, each once."""
        return sorted({i for r in self.critical for i in r.inputs})

    def count(self, *, expected: bool | None = None) -> int:
        """Number of reports, optionally only the expected (or unexpected) ones."""
        if expected is None:
            return len(self.reports)
        return sum(1 for r in self.reports if r.expected is expected)

    def summary(self) -> str:
        """A plain-text summary: counts, failed inputs, one line per report."""
        if not self.reports:
            return "No errors."
        lines = [
            f"{len(self.reports)} error report(s): {len(self.critical)} critical, "
            f"{len(self.noncritical)} noncritical; {self.count(expected=True)} expected, "
            f"{self.count(expected=False)} unexpected.",
        ]
        failed = self.failed_inputs()
        if failed:
            lines.append(f"Failed inputs ({len(failed)}): {', '.join(failed)}")
        lines.extend(r.one_line() for r in self.reports)
        return "\n".join(lines)

    _COLUMNS = ("time", "step", "inputs", "error_type", "message", "expected", "critical")

    def _rows(self) -> list[list[str]]:
        return [
            [
                r.time.isoformat(timespec="seconds"),
                r.step,
                ", ".join(r.inputs),
                r.error_type,
                r.message,
                "yes" if r.expected else "no",
                "yes" if r.critical else "no",
            ]
            for r in self.reports
        ]

    def to_tsv(self) -> str:
        """Tab-separated values with a header line (tabs and newlines in cells become spaces)."""
        lines = ["\t".join(self._COLUMNS)]
        lines.extend("\t".join(_cell(c) for c in row) for row in self._rows())
        return "\n".join(lines) + "\n"

    def to_markdown(self, title: str = "Errors", level: int = 2) -> str:
        """The one markdown rendering of the stack (artifacts and run reports): a heading of
        ``level``, the summary line, and every report, critical ones first (input, step, what
        went wrong, whether it was critical and expected)."""
        head = f"{'#' * level} {title}\n\n"
        if not self.reports:
            return head + "No errors.\n"
        ordered = sorted(self.reports, key=lambda r: (not r.critical, r.step, r.inputs))
        columns = ("input", "step", "error", "critical", "expected")
        rows = [
            (
                ", ".join(r.inputs),
                r.step,
                f"{r.error_type}: {r.message}",
                "yes" if r.critical else "no (dropped, the rest went on)",
                "yes" if r.expected else "**no** (see the task run's log)",
            )
            for r in ordered
        ]
        out = [head + self.summary().splitlines()[0] + "\n"]
        out.append("| " + " | ".join(columns) + " |")
        out.append("|" + "---|" * len(columns))
        out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
        return "\n".join(out) + "\n"

    def to_table(self) -> list[dict[str, str]]:
        """Rows as dictionaries (for a Prefect table artifact)."""
        return [dict(zip(self._COLUMNS, row, strict=True)) for row in self._rows()]
