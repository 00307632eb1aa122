"""One retry policy for every transport: attempts, exponential backoff, typed transient faults.

What is worth retrying is decided by types, never by message text: exception classes
(connection resets, timeouts, a busy database) and HTTP status codes (5xx, 408, 429). Each
backend names its own transient classes (:meth:`RetryPolicy.with_transient`); a caller asks
:meth:`RetryPolicy.call` to run a function under the policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

#: HTTP status codes that say "try again": timeouts, throttling and server errors.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient_status(status: int | None) -> bool:
    """Whether an HTTP status code is worth retrying (408, 429 and every 5xx)."""
    return status is not None and (status >= 500 or status in TRANSIENT_STATUSES)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes
    ----------
    attempts
        Tries in all, the first included (1 = no retry).
    backoff
        Seconds before the first retry; multiplied by ``factor`` for each further one.
    factor
        Growth of the delay between retries.
    transient
        Exception classes worth retrying.
    permanent
        Exception classes never retried, even when they subclass a transient one
        (``FileNotFoundError`` is an ``OSError``).
    """

    attempts: int = 4
    backoff: float = 0.25
    factor: float = 2.0
    transient: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    permanent: tuple[type[BaseException], ...] = field(
        default=(
            FileNotFoundError,
            FileExistsError,
            PermissionError,
            IsADirectoryError,
            NotADirectoryError,
        )
    )

    def delays(self) -> Iterator[float]:
        """The waits between attempts, in seconds (``attempts - 1`` of them)."""
        delay = self.backoff
        for _ in range(self.attempts - 1):
            yield delay
            delay *= self.factor

    def with_transient(self, *classes: type[BaseException]) -> RetryPolicy:
        """The same policy retrying these classes too."""
        return replace(self, transient=self.transient + classes)

    def once(self) -> RetryPolicy:
        """The same classification with a single attempt."""
        return replace(self, attempts=1)

    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt: a transient class, or an error carrying a
        transient HTTP status (``status_code`` or ``status`` attribute)."""
        if isinstance(exc, self.permanent):
            return False
        status = getattr(exc, "status_code", None)
        if not isinstance(status, int):
            status = getattr(exc, "status", None)
        if isinstance(status, int):
            return is_transient_status(status)
        return isinstance(exc, self.transient)

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str = "call",
        describe: Callable[[BaseException], str] = lambda exc: type(exc).__name__,
        retry_if: Callable[[BaseException], bool] | None = None,
        before_retry: Callable[[BaseException], None] | None = None,
        quiet: bool = False,
    ) -> T:
        """Run ``fn`` until it returns, retrying transient errors after the policy's delays;
        the last error (or the first permanent one) is raised as it is.

        Parameters
        ----------
        what, describe
            Word the one-line warning of each retry (``describe`` must not reveal secrets).
        retry_if
            Decides instead of :meth:`is_transient` (for faults whose type is a code on the
            exception, such as a database's error code).
        before_retry
            Called with the error before each retry (to reset a connection, say).
        quiet
            Log retries at debug level (faults expected in normal operation, such as a busy
            database).
        """
        decide = retry_if or self.is_transient
        delays = self.delays()
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as exc:
                delay = next(delays, None) if decide(exc) else None
                if delay is None:
                    raise
                if before_retry is not None:
                    before_retry(exc)
                (log.debug if quiet else log.warning)(
                    "%s failed (%s), retry %d of %d in %.2f s",
                    what,
                    describe(exc),
                    attempt,
                    self.attempts - 1,
                    delay,
                )
                time.sleep(delay)
                attempt += 1
