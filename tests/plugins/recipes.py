"""The ``skyflat`` recipe, registered with its QC metric and default range."""

from __future__ import annotations

from astroflow.tasks.recipes import Recipe
from tests.recipe_plugin import skyflat

SKYFLAT = Recipe(
    "skyflat",
    skyflat,
    "Sky flat: bias-subtracted, median-normalised science frames combined; median 1.",
    qc={"median": (0.9, 1.1)},
)
