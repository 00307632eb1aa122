"""``astroflow serve``: every deployment of ``deployments/prefect.yaml`` from one process
(Prefect's ``serve``), for users without a work pool: the same parameters and schedules (as
inactive as in the file), under names of their own (``<name>-served``). A served deployment
that took a work pool deployment's name would take it over (no pool, no path) and pause its
schedules when ``serve`` stops; separate names leave the pool's deployments alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PREFECT_YAML = Path(__file__).resolve().parents[1] / "deployments" / "prefect.yaml"


def deployment_specs(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The deployments declared in prefect.yaml."""
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"])


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


def build_deployments(path: Path = PREFECT_YAML) -> list[Any]:
    from prefect.schedules import Cron

    out = []
    for spec in deployment_specs(path):
        flow = _flow_for(spec["entrypoint"])
        schedules = [
            Cron(s["cron"], timezone=s.get("timezone", "UTC"), active=s.get("active", True))
            for s in spec.get("schedules", [])
        ]
        out.append(
            flow.to_deployment(
                name=served_name(spec["name"]),
                parameters=spec.get("parameters", {}),
                description=spec.get("description"),
                tags=spec.get("tags", []),
                schedules=schedules,
            )
        )
    return out


def serve_all(limit: int | None = None) -> None:
    """Serve every deployment until interrupted."""
    from prefect import serve

    serve(*build_deployments(), limit=limit)
