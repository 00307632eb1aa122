"""Prefect tasks of the calibration cascade: one per recipe, each mapped over its SOFs.

Every recipe, built in or plug-in, gets the same task (named after the recipe, runs
``<recipe>-<product>``, described by its registration); its body is
:func:`astroflow.tasks.cascade_work.run_recipe`.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from astroflow.models.cascade import RecipeInput, RecipeResult
from astroflow.tasks.cascade_work import run_recipe
from astroflow.tasks.logs import send_astroflow_logs_to_runs
from astroflow.tasks.recipes import Recipe

send_astroflow_logs_to_runs()

_TASKS: dict[tuple[str, str], Any] = {}


def _ended(result: RecipeResult) -> Any:
    """A product that failed (its QC, or before with the same inputs) ends its task run as
    Failed, the reason as the state's message; the result still reaches the flow."""
    if result.status == "fail":
        return Failed(message=result.message, data=result)
    return result


def _run(inp: RecipeInput) -> RecipeResult:
    return _ended(run_recipe(inp))


def recipe_task(recipe: Recipe) -> Any:
    """The Prefect task of ``recipe`` (made once per name and description)."""
    key = (recipe.name, recipe.description)
    if key not in _TASKS:
        _TASKS[key] = task(
            _run,
            name=recipe.name,
            description=recipe.description or None,
            task_run_name=recipe.name + "-{inp.product}",
            cache_policy=NO_CACHE,
        )
    return _TASKS[key]
