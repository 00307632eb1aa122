"""``astroflow serve``: every deployment of ``deployments/prefect.yaml`` (shipped with the
package as ``astroflow.deployments``) from one process (Prefect's ``serve``), for users
without a work pool: the same parameters and schedules (every field Prefect takes: cron,
interval, rrule, timezone, anchor date, day_or, active, parameters, slug; as inactive as in
the file) and concurrency limits, under names of their own (``<name>-served``). A served deployment
that took a work pool deployment's name would take it over (no pool, no path) and pause its
schedules when ``serve`` stops; separate names leave the pool's deployments alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from astroflow.models.errors import ConfigError

#: The shipped deployments file: inside the installed package, wherever that is.
PREFECT_YAML: Traversable = files("astroflow.deployments").joinpath("prefect.yaml")


def deployment_specs(path: Path | Traversable = PREFECT_YAML) -> list[dict[str, Any]]:
    """The deployments declared in prefect.yaml."""
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"])


#: The schedule fields of prefect.yaml that Prefect's ``Schedule`` takes.
SCHEDULE_FIELDS = (
    "cron",
    "interval",
    "rrule",
    "timezone",
    "anchor_date",
    "day_or",
    "active",
    "parameters",
    "slug",
)


def schedule(spec: dict[str, Any], deployment: str) -> Any:
    """A ``prefect.schedules.Schedule`` from one schedule of prefect.yaml (``interval`` in
    seconds, ``anchor_date`` ISO 8601), every field passed through.

    Raises
    ------
    ConfigError
        For a field Prefect does not take, or a schedule without cron, interval or rrule.
    """
    from prefect.schedules import Schedule

    unknown = sorted(set(spec) - set(SCHEDULE_FIELDS))
    if unknown:
        raise ConfigError(
            f"deployment {deployment!r}: unknown schedule field(s) {', '.join(unknown)} "
            f"(known: {', '.join(SCHEDULE_FIELDS)})"
        )
    fields = dict(spec)
    if not any(fields.get(k) for k in ("cron", "interval", "rrule")):
        raise ConfigError(f"deployment {deployment!r}: a schedule needs cron, interval or rrule")
    if fields.get("interval") is not None and not isinstance(fields["interval"], timedelta):
        fields["interval"] = timedelta(seconds=float(fields["interval"]))
    if isinstance(fields.get("anchor_date"), str):
        fields["anchor_date"] = datetime.fromisoformat(fields["anchor_date"])
    fields.setdefault("timezone", "UTC")
    return Schedule(**fields)


def concurrency_limit(spec: dict[str, Any]) -> Any:
    """A deployment's ``concurrency_limit`` (a number, or ``limit`` with
    ``collision_strategy``) as Prefect's ``ConcurrencyLimitConfig``; None when it has none."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    given = spec.get("concurrency_limit")
    if given is None:
        return None
    if isinstance(given, int):
        return ConcurrencyLimitConfig(limit=given)
    return ConcurrencyLimitConfig.model_validate(given)


def _flow_for(entrypoint: str) -> Any:
    import importlib

    module_path, name = entrypoint.split(":")
    if module_path.endswith(".py"):  # a file of the checkout: flows/ingest.py
        module_path = "astroflow." + module_path.removesuffix(".py").replace("/", ".")
    module = importlib.import_module(module_path)
    return getattr(module, name)


SERVED_SUFFIX = "-served"


def served_name(name: str) -> str:
    """The name ``serve`` gives the deployment ``name`` of prefect.yaml."""
    return f"{name}{SERVED_SUFFIX}"


def build_deployments(path: Path | Traversable = PREFECT_YAML) -> list[Any]:
    out = []
    for spec in deployment_specs(path):
        flow = _flow_for(spec["entrypoint"])
        schedules = [schedule(s, spec["name"]) for s in spec.get("schedules") or []]
        out.append(
            flow.to_deployment(
                name=served_name(spec["name"]),
                parameters=spec.get("parameters", {}),
                description=spec.get("description"),
                tags=spec.get("tags", []),
                schedules=schedules,
                concurrency_limit=concurrency_limit(spec),
            )
        )
    return out


def serve_all(limit: int | None = None, path: Path | None = None) -> None:
    """Serve every deployment of ``path`` (default: the shipped file) until interrupted."""
    from prefect import serve

    serve(*build_deployments(path if path is not None else PREFECT_YAML), limit=limit)
