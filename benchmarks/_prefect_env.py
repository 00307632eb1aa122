"""Settings the Prefect-running benchmarks share: a quiet ephemeral API, no analytics."""

from __future__ import annotations

import os


def quiet_ephemeral_prefect() -> None:
    """Set (unless already set) what a benchmark needs from Prefect's ephemeral server."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
