"""One run at a time per work folder or workspace: the flows that write hold its lock
(:mod:`astroflow.storage.locks`) for their whole run.

A second run on the same folder (a late schedule beside a manual run, two ``astroflow ingest``
commands, a backfill) gives up at once with a line naming the holder (``BusyError``: its run
ends Failed having done nothing), or waits ``ASTROFLOW_LOCK_WAIT_S`` seconds for it first.
Deployments also carry a concurrency limit (``deployments/prefect.yaml``), so that two runs of
one deployment queue instead of colliding. Subflows run in their parent's process and take
the parent's lock again.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from astroflow.models.settings import Settings
from astroflow.storage.locks import run_lock

F = TypeVar("F", bound=Callable[..., Any])


def _holder_name() -> str:
    """This run's name for the lock file: the flow run's, or the command's process."""
    from prefect.runtime import flow_run

    name = flow_run.name  # None outside a flow run
    return f"flow run {name!r}" if name else f"process {os.getpid()}"


def one_run_at_a_time(parameter: str, what: str) -> Callable[[F], F]:
    """Hold the lock of the folder a flow's ``parameter`` names (a ``what``: "work folder",
    "workspace") while it runs."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            folder = bound.arguments.get(parameter)
            if not folder:
                return fn(*args, **kwargs)
            with run_lock(Path(str(folder)), what, _holder_name(), Settings().lock_wait_s):
                return fn(*args, **kwargs)

        # the signature with its annotations resolved in the flow's own module: Prefect
        # validates the parameters against it, in this module's namespace, which does not
        # know the names they use (``params.WorkDir``)
        wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
