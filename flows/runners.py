"""Where a flow's mapped tasks run: the ``task_runner`` parameter of the cascade and the
ingest flows."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from astroflow.models.errors import ConfigError


def make_task_runner(task_runner: str | None, *, threads: int = 2) -> Any:
    """``threads`` (default: ``threads`` workers in this process), ``dask-local``/``local``
    (a Dask LocalCluster of 2 single-threaded worker processes) or a Dask scheduler address
    (``tcp://host:port``).

    Raises
    ------
    ConfigError
        For any other value.
    """
    if task_runner in ("threads", "", None):
        return ThreadPoolTaskRunner(max_workers=threads)
    from prefect_dask import DaskTaskRunner

    if task_runner in ("local", "dask-local", "dask"):
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": 2,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    if "://" in task_runner:
        return DaskTaskRunner(address=task_runner)
    raise ConfigError(f"task_runner {task_runner!r}: use threads, dask-local or tcp://host:port")
