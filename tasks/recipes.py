"""Recipes as plug-ins: which function makes a recipe's product.

A recipe of the rules YAML is made by, in order: the function its ``function:`` names
(``package.module:function``); a function registered under its name in the
``astroflow.recipes`` entry-point group of an installed package; or the built-in of that name
(``mbias``, ``mdark``, ``mflat``; ``reduce`` is built in). A recipe function takes the
:class:`~astroflow.models.cascade.RecipeInput` of one SOF and returns
``(master, qc, dropped, used)``: the product's pixels (2-D float32), its QC values (name ->
number), the reasons of frames it left out, and the paths of the frames it combined.
astroflow writes the product with provenance, judges its QC and records its status. The
helpers :func:`astroflow.tasks.cascade_work.combine_set` and
:func:`~astroflow.tasks.cascade_work.calibration` do the common parts. Prefect-free.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from astroflow.models.errors import ConfigError
from astroflow.models.rules import RuleSet

ENTRY_POINT_GROUP = "astroflow.recipes"
BUILT_IN_REDUCE = "reduce"

RecipeFunction = Callable[[Any], tuple[Any, dict[str, float], list[str], list[Any]]]


def _built_ins() -> dict[str, RecipeFunction]:
    from astroflow.tasks.cascade_work import RECIPES

    return dict(RECIPES)


def recipe_function(name: str, function: str | None = None) -> RecipeFunction:
    """The function that makes recipe ``name``.

    Raises
    ------
    ConfigError
        When none is registered (or ``function`` cannot be imported), naming the recipe.
    """
    if function:
        module_name, _, attr = function.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"recipe {name!r}: cannot load its function {function!r} ({exc})"
            ) from None
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            return entry.load()
    built_in = _built_ins()
    if name in built_in:
        return built_in[name]
    raise ConfigError(
        f"recipe {name!r} is not registered: give it `function: package.module:function` in "
        f"the rules, or install a package with an {ENTRY_POINT_GROUP!r} entry point of that "
        f"name (built in: {', '.join(sorted([*built_in, BUILT_IN_REDUCE]))})"
    )


def check_recipes(rules: RuleSet) -> None:
    """Every recipe of the rules can be made (before anything runs).

    Raises
    ------
    ConfigError
        Naming every recipe that cannot.
    """
    problems = []
    for recipe in rules.recipes:
        if recipe.name == BUILT_IN_REDUCE and recipe.function is None:
            continue
        try:
            recipe_function(recipe.name, recipe.function)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(f"rules {rules.name!r}: " + "; ".join(problems))
