"""Run names that say what ran: ``ingest-wwt``, ``calibrate-night42-base``,
``night-2026-12-02-STE3``, instead of Prefect's random ``macho-labradoodle``.

A name is made from the run's parameters when it starts (Prefect's ``flow_run_name``); the
night flow renames its run once prepare knows the night and the instruments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["rename_run", "run_name", "short"]


def short(value: Any) -> str:
    """What names a repository, a folder or a workspace in a run name: the last part of its
    path or URL (``az://container/wwt`` -> ``wwt``, ``/srv/night42/`` -> ``night42``)."""
    if value is None:
        return ""
    text = str(value).rstrip("/")
    text = text.split("://", 1)[-1]
    last = text.rsplit("/", 1)[-1] or text
    return re.sub(r"[^A-Za-z0-9._+-]", "_", last)[:40]


def run_name(prefix: str, *parameters: str, fallback: str = "") -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``prefix`` and the short form of each parameter
    (``fallback`` for a parameter left empty)."""

    def name() -> str:
        from prefect.runtime import flow_run

        given = flow_run.parameters
        parts = [short(given.get(p)) or fallback for p in parameters]
        return "-".join([prefix, *(p for p in parts if p)])

    return name


def rename_run(name: str) -> None:
    """Rename the current flow run (the night flow, once it knows the night)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(context.flow_run.id, name=name)
    # this process's view of the run too: the events it emits name it so
    context.flow_run.name = name
