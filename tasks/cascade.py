"""Prefect tasks of the calibration cascade: one per recipe, each mapped over its SOFs."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from astroflow.models.cascade import RecipeInput, RecipeResult
from astroflow.tasks.cascade_work import run_recipe


@task(name="mbias", task_run_name="mbias-{inp.product}", cache_policy=NO_CACHE)
def mbias(inp: RecipeInput) -> RecipeResult:
    """Master bias: per-pixel sigma-clipped mean of the raw biases."""
    return run_recipe(inp)


@task(name="mdark", task_run_name="mdark-{inp.product}", cache_policy=NO_CACHE)
def mdark(inp: RecipeInput) -> RecipeResult:
    """Master dark (ADU/s): clipped mean of (raw - master bias) / exptime."""
    return run_recipe(inp)


@task(name="mflat", task_run_name="mflat-{inp.product}", cache_policy=NO_CACHE)
def mflat(inp: RecipeInput) -> RecipeResult:
    """Master flat: clipped mean of bias/dark-corrected, median-normalised flats; median 1."""
    return run_recipe(inp)


@task(name="reduce", task_run_name="reduce-{inp.product}", cache_policy=NO_CACHE)
def reduce(inp: RecipeInput) -> RecipeResult:
    """Reduced science frame with variance and mask planes."""
    return run_recipe(inp)


RECIPE_TASKS = {"mbias": mbias, "mdark": mdark, "mflat": mflat, "reduce": reduce}
