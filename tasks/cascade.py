"""Prefect tasks of the calibration cascade: one per recipe, each mapped over its SOFs."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from astroflow.models.cascade import RecipeInput, RecipeResult
from astroflow.tasks.cascade_work import run_recipe


def _ended(result: RecipeResult) -> Any:
    """A product that failed (its QC, or before with the same inputs) ends its task run as
    Failed, the reason as the state's message; the result still reaches the flow."""
    if result.status == "fail":
        return Failed(message=result.message, data=result)
    return result


@task(name="mbias", task_run_name="mbias-{inp.product}", cache_policy=NO_CACHE)
def mbias(inp: RecipeInput) -> RecipeResult:
    """Master bias: per-pixel sigma-clipped mean of the raw biases."""
    return _ended(run_recipe(inp))


@task(name="mdark", task_run_name="mdark-{inp.product}", cache_policy=NO_CACHE)
def mdark(inp: RecipeInput) -> RecipeResult:
    """Master dark (ADU/s): clipped mean of (raw - master bias) / exptime."""
    return _ended(run_recipe(inp))


@task(name="mflat", task_run_name="mflat-{inp.product}", cache_policy=NO_CACHE)
def mflat(inp: RecipeInput) -> RecipeResult:
    """Master flat: clipped mean of bias/dark-corrected, median-normalised flats; median 1."""
    return _ended(run_recipe(inp))


@task(name="reduce", task_run_name="reduce-{inp.product}", cache_policy=NO_CACHE)
def reduce(inp: RecipeInput) -> RecipeResult:
    """Reduced science frame with variance and mask planes."""
    return _ended(run_recipe(inp))


RECIPE_TASKS: dict[str, Any] = {"mbias": mbias, "mdark": mdark, "mflat": mflat, "reduce": reduce}


def _plugin(inp: RecipeInput) -> RecipeResult:
    """A plug-in recipe (:mod:`astroflow.tasks.recipes`)."""
    return _ended(run_recipe(inp))


def recipe_task(name: str) -> Any:
    """The Prefect task of recipe ``name``: a built-in's, or one made for a plug-in, named after
    it (``skyflat``, runs ``skyflat-<product>``) like the built-ins."""
    if name not in RECIPE_TASKS:
        RECIPE_TASKS[name] = task(
            _plugin, name=name, task_run_name=name + "-{inp.product}", cache_policy=NO_CACHE
        )
    return RECIPE_TASKS[name]
