"""astroflow's own log records in the run's log (the Prefect UI), wherever a run executes:
the flow's process, a worker's, a Dask worker's.

Prefect sends only its own loggers' records to the API (``PREFECT_LOGGING_EXTRA_LOGGERS`` adds
others, but only where the variable is set before Prefect configures logging, and a record
made outside a run then warns). :func:`send_astroflow_logs_to_runs`, called when the flow and
task modules are imported, gives the ``astroflow`` logger Prefect's API log handler for the
records made inside a flow or task run; records made elsewhere (the command line, a plain
script) go to the usual handlers only.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

__all__ = ["RunLogHandler", "send_astroflow_logs_to_runs"]


class RunLogHandler(APILogHandler):
    """Prefect's API log handler for records made inside a flow or task run only."""

    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return  # not in a run: nothing to attach it to (and no warning about it)
        super().emit(record)


def send_astroflow_logs_to_runs() -> None:
    """Give the ``astroflow`` logger a :class:`RunLogHandler` (once per process). Its records
    at WARNING and above (the logger's effective level) reach the run's log."""
    ours = logging.getLogger("astroflow")
    if not any(isinstance(h, RunLogHandler) for h in ours.handlers):
        ours.addHandler(RunLogHandler())
