"""Organiser rules: how to read, classify and group raw frames, and the cascade's recipes.

A ruleset is a YAML file (``models/rulesets/*.yaml`` ship with the package; a workspace may
select another by name or path). Recipes are listed in cascade order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from astroflow.models.errors import ConfigError

# Frame attributes a ruleset maps to header keywords.
FIELDS = (
    "imagetyp",
    "exptime",
    "filter",
    "xbinning",
    "ybinning",
    "gain",
    "readout",
    "instrument",
    "date_obs",
    "mjd_obs",
    "object",
    "catg",
    "tech",
)
# Keys frames and products can be grouped and matched on.
GROUP_KEYS = ("instrument", "binning", "readout", "gain", "filter", "exptime", "night")


class Classifier(BaseModel):
    """Frames whose header values (case-insensitive, trimmed) match all ``match`` entries are
    of ``kind``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    match: dict[str, tuple[str, ...]]

    @field_validator("match")
    @classmethod
    def _fields(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for key in value:
            if key not in FIELDS:
                raise ValueError(f"unknown field {key!r} (known: {', '.join(FIELDS)})")
        return {k: tuple(v.strip().lower() for v in vals) for k, vals in value.items()}


class CalibrationNeed(BaseModel):
    """A calibration a recipe needs: the product of an earlier recipe with ``match`` keys equal,
    ranked by |delta exptime| when ``rank_by_exptime``, then by |delta MJD|."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipe: str
    match: tuple[str, ...] = ()
    rank_by_exptime: bool = False
    tag: str

    @field_validator("match")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if key not in GROUP_KEYS:
                raise ValueError(f"unknown match key {key!r} (known: {', '.join(GROUP_KEYS)})")
        return value


class Recipe(BaseModel):
    """One step of the cascade."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")
    kind: str  # which classified frames it takes
    raw_tag: str  # SOF tag of its raw frames
    product_tag: str  # PRO.CATG of its product
    group_by: tuple[str, ...]
    min_frames: int = Field(1, ge=1)
    one_per_frame: bool = False
    needs: tuple[CalibrationNeed, ...] = ()
    # a plug-in recipe: "package.module:function"; without it, the built-in of this name or
    # a function registered under it in the `astroflow.recipes` entry-point group
    function: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

    @field_validator("group_by")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if key not in GROUP_KEYS:
                raise ValueError(f"unknown group key {key!r} (known: {', '.join(GROUP_KEYS)})")
        return value


class RuleSet(BaseModel):
    """A whole ruleset: keywords, classifiers and recipes (in cascade order)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    keywords: dict[str, str]
    required: tuple[str, ...] = ("imagetyp", "exptime")
    classify: tuple[Classifier, ...]
    recipes: tuple[Recipe, ...]
    exptime_decimals: int = 2
    # Header keywords that mark a reduced product, never a raw frame (astroflow's own AF_RECIP
    # always; e.g. ESO's "ESO PRO CATG"): such files go to misc/ with the reason.
    product_keywords: tuple[str, ...] = ("AF_RECIP",)

    @field_validator("keywords")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in FIELDS:
                raise ValueError(f"unknown field {key!r} (known: {', '.join(FIELDS)})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        names = [r.name for r in self.recipes]
        if len(set(names)) != len(names):
            raise ValueError(f"recipe names repeat: {names}")
        for i, recipe in enumerate(self.recipes):
            for need in recipe.needs:
                if need.recipe not in names[:i]:
                    raise ValueError(
                        f"recipe {recipe.name!r} needs {need.recipe!r}, which is not an earlier "
                        "recipe"
                    )
        kinds = {c.kind for c in self.classify}
        for recipe in self.recipes:
            if recipe.kind not in kinds:
                raise ValueError(
                    f"recipe {recipe.name!r} takes kind {recipe.kind!r}, "
                    "which no classifier produces"
                )
        for key in self.required:
            if key not in self.keywords and key not in ("mjd_obs",):
                raise ValueError(f"required field {key!r} has no keyword")
        if "mjd_obs" not in self.keywords and "date_obs" not in self.keywords:
            raise ValueError("keywords need mjd_obs or date_obs")
        return self

    def recipe(self, name: str) -> Recipe:
        for r in self.recipes:
            if r.name == name:
                return r
        raise KeyError(name)


RULESETS_DIR = Path(__file__).with_name("rulesets")
DEFAULT_RULESET = "generic-ccd"


def load_rules(name_or_path: str | Path = DEFAULT_RULESET) -> RuleSet:
    """Load a ruleset by shipped name (``generic-ccd``, ``eso-imager``) or file path.

    Raises
    ------
    ConfigError
        Naming the file, the entry and the key for any problem.
    """
    import yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = RULESETS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in RULESETS_DIR.glob("*.yaml")))
        raise ConfigError(f"ruleset {str(name_or_path)!r} not found (shipped: {shipped})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            where = []
            if len(loc) >= 2 and loc[0] in ("recipes", "classify") and isinstance(loc[1], int):
                items = data.get(loc[0]) or []
                entry = items[loc[1]] if loc[1] < len(items) else {}
                label = entry.get("name") or entry.get("kind") if isinstance(entry, dict) else None
                where.append(f"{loc[0]}[{loc[1]}]" + (f" ({label})" if label else ""))
                loc = loc[2:]
            key = ".".join(str(p) for p in loc)
            problems.append(f"{' '.join(where)} {key}: {err['msg']}".strip())
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None


Status = Literal["pass", "fail"]
