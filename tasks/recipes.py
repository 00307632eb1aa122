"""Recipes as plug-ins: which function makes a recipe's product, and what it declares.

A recipe is a :class:`Recipe`: its name, its function, a description (its Prefect task's),
the QC metrics it measures with their default ranges, and the planes (FITS extensions) of
its product. A recipe of the rules YAML is found, in order: through the object its
``function:`` names (``package.module:attribute``); or in the ``astroflow.recipes`` entry-point
group under its name, where astroflow registers its own (``mbias``, ``mdark``, ``mflat``,
``reduce``, in ``pyproject.toml``) exactly as another package would. Either may name a
:class:`Recipe` or a bare function (a recipe with no declared metrics).

A recipe function takes the :class:`~astroflow.models.cascade.RecipeInput` of one SOF and
returns ``(product, qc, dropped, used)``: the product (a 2-D float32 array, or a
:class:`~astroflow.tasks.cascade_work.Product` with extension planes, cards, HISTORY and
the header to start from), its QC values (name -> number), the reasons of frames it left out,
and the paths of the frames it used. astroflow writes the product with provenance, judges
its QC and records its status. The helpers :func:`astroflow.tasks.cascade_work.combine_set`
and :func:`~astroflow.tasks.cascade_work.calibration` do the common parts. Prefect-free.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from astroflow.models.errors import ConfigError
from astroflow.models.rules import RuleBook, RuleSet, as_book
from astroflow.storage.plugins import find_plugin, plugin_names

ENTRY_POINT_GROUP = "astroflow.recipes"

RecipeFunction = Callable[[Any], tuple[Any, dict[str, float], list[str], list[Any]]]


@dataclass(frozen=True)
class Recipe:
    """A recipe's registration.

    Attributes
    ----------
    name
        The recipe's name in the rules (and its Prefect task's).
    function
        Makes one product from one SOF (see the module's docstring).
    description
        One line: what the product is (the task's description in the Prefect UI).
    qc
        The QC metrics it measures, with their default inclusive ranges (``name: (lo, hi)``);
        a session's ``qc.yaml`` overrides them like the built-ins' ranges.
    planes
        The FITS extensions of its product after the primary image (``VARIANCE``,
        ``MASK``...): what the cascade reserves disk space for.
    """

    name: str
    function: RecipeFunction
    description: str = ""
    qc: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    planes: tuple[str, ...] = ()

    def __call__(self, inp: Any) -> tuple[Any, dict[str, float], list[str], list[Any]]:
        return self.function(inp)


def _as_recipe(name: str, obj: Any) -> Recipe:
    if isinstance(obj, Recipe):
        return (
            obj
            if obj.name == name
            else Recipe(name, obj.function, obj.description, obj.qc, obj.planes)
        )
    if callable(obj):
        doc = (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
        return Recipe(name, obj, doc)
    raise ConfigError(f"recipe {name!r}: {obj!r} is neither a Recipe nor a function")


def find_recipe(name: str, function: str | None = None) -> Recipe:
    """The registration of recipe ``name`` (``function``: the rules' ``module:attribute``).

    Raises
    ------
    ConfigError
        When none is registered (or ``function`` cannot be imported), naming the recipe.
    """
    if function:
        module_name, _, attr = function.partition(":")
        try:
            return _as_recipe(name, getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"recipe {name!r}: cannot load its function {function!r} ({exc})"
            ) from None
    try:
        return _as_recipe(name, find_plugin(ENTRY_POINT_GROUP, name, "recipe"))
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}: give it `function: package.module:function` in the rules, or install a "
            f"package with an {ENTRY_POINT_GROUP!r} entry point of that name (registered: "
            f"{', '.join(plugin_names(ENTRY_POINT_GROUP))})"
        ) from None


def recipe_function(name: str, function: str | None = None) -> RecipeFunction:
    """The function that makes recipe ``name`` (see :func:`find_recipe`)."""
    return find_recipe(name, function).function


def rules_recipes(rules: RuleSet) -> dict[str, Recipe]:
    """Every recipe of the rules, by name, in cascade order.

    Raises
    ------
    ConfigError
        Naming every recipe that cannot be made (before anything runs).
    """
    found: dict[str, Recipe] = {}
    problems = []
    for recipe in rules.recipes:
        try:
            found[recipe.name] = find_recipe(recipe.name, recipe.function)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(f"rules {rules.name!r}: " + "; ".join(problems))
    return found


def check_recipes(rules: RuleSet | RuleBook) -> None:
    """Every recipe of the rules (each ruleset of a book) can be made (before anything runs).

    Raises
    ------
    ConfigError
        Naming every recipe that cannot.
    """
    for rs in as_book(rules).rulesets:
        rules_recipes(rs)


def declared_qc(rules: RuleSet | RuleBook) -> dict[str, dict[str, tuple[float, float]]]:
    """The QC metrics the rules' recipes declare, with their default ranges (recipe ->
    metric -> range): what a session's ``qc.yaml`` may set besides the shipped defaults."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for rs in as_book(rules).rulesets:
        for name, recipe in rules_recipes(rs).items():
            if recipe.qc:
                out[name] = {**dict(recipe.qc), **out.get(name, {})}
    return out
