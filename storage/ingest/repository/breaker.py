"""One circuit breaker per remote repository and process: a dead endpoint is noticed once.

When a repository stops answering (connection refused, reset, timed out), every upload of a
publish would otherwise wait out its own timeouts and retries: 60 files times the SDK's
patience. The breaker counts consecutive connection faults of one repository URL across all
threads of the process; at ``threshold`` it opens, and every call to that repository fails at
once with :class:`~astroflow.models.errors.RepositoryUnreachableError` until ``cooldown``
seconds have passed, when one call is let through to try again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from astroflow.models.errors import RepositoryUnreachableError


@dataclass
class CircuitBreaker:
    """Consecutive-fault breaker of one repository.

    Attributes
    ----------
    url
        The repository it guards (for messages).
    threshold
        Consecutive connection faults that open it.
    cooldown
        Seconds it stays open before one call may try again.
    """

    url: str
    threshold: int = 3
    cooldown: float = 30.0
    faults: int = 0
    opened_at: float | None = None
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self.opened_at is not None and time.monotonic() - self.opened_at < self.cooldown

    def check(self) -> None:
        """Raise :class:`RepositoryUnreachableError` while the breaker is open."""
        with self._lock:
            if self.opened_at is None:
                return
            if time.monotonic() - self.opened_at >= self.cooldown:
                self.opened_at = None  # half open: let this call try
                self.faults = self.threshold - 1
                return
            raise RepositoryUnreachableError(
                f"repository {self.url} is unreachable ({self.last_error}); not trying again "
                f"for {self.cooldown:.0f} s"
            )

    def fault(self, description: str) -> None:
        """Count one connection fault (``description`` names it, without secrets)."""
        with self._lock:
            self.faults += 1
            self.last_error = description
            if self.faults >= self.threshold and self.opened_at is None:
                self.opened_at = time.monotonic()

    def success(self) -> None:
        with self._lock:
            self.faults = 0
            self.opened_at = None


_BREAKERS: dict[str, CircuitBreaker] = {}
_LOCK = threading.Lock()


def breaker_for(url: str) -> CircuitBreaker:
    """The process-wide breaker of the repository at ``url``."""
    with _LOCK:
        if url not in _BREAKERS:
            _BREAKERS[url] = CircuitBreaker(url)
        return _BREAKERS[url]
