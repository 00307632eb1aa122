"""Values passed between the cascade's flow and its recipe tasks (small: paths, not pixels)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class WorkspaceRef(BaseModel):
    """The handle of an organiser workspace: its folder and its database, as one value that
    tasks receive (``astroflow.storage.organiser.workspace.Workspace.from_ref`` opens it).

    Attributes
    ----------
    root
        The workspace folder (absolute).
    database_url
        Its organiser database (SQLAlchemy URL; SQLite in the workspace by default).
    """

    model_config = ConfigDict(frozen=True)

    root: Path
    database_url: str


class RecipeInput(BaseModel):
    """One SOF to run: what a recipe task receives."""

    model_config = ConfigDict(frozen=True)

    workspace: WorkspaceRef
    session: str
    recipe: str
    set_name: str
    product: str  # product name
    product_path: str  # absolute
    raw: tuple[str, ...]  # absolute paths of the raw frames
    calibrations: tuple[tuple[str, str], ...] = ()  # (tag, absolute path)
    min_frames: int = 1
    qc_ranges: dict[str, tuple[float, float]] = {}
    overwrite: bool = False
    exptime_key: str = "EXPTIME"
    gain_key: str = "GAIN"
    substitutions: tuple[str, ...] = ()
    function: str | None = None  # a plug-in recipe's "module:function" (rules YAML)


class RecipeResult(BaseModel):
    """What a recipe task returns."""

    model_config = ConfigDict(frozen=True)

    product: str
    recipe: str
    path: str
    outcome: Literal["made", "skipped", "failed"]
    status: Literal["pass", "fail"]
    qc: dict[str, float] = {}
    message: str = ""
    dropped: tuple[str, ...] = ()  # unreadable input frames left out
    substitutions: tuple[str, ...] = ()
    seconds: float = 0.0  # time spent in the recipe itself (reading, maths, writing)


class CascadeSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    session: str
    made: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    reasons: dict[str, str] = {}  # failed product -> why (its recipe's error or its QC)
    # failed product -> "qc" (failed its QC ranges), "recipe" (its recipe raised) or
    # "unchanged" (failed before with the same inputs: not redone)
    failure_kinds: dict[str, Literal["qc", "recipe", "unchanged"]] = {}
    recipes: dict[str, str] = {}  # product -> recipe, for every product of the run
    replaced: dict[str, tuple[str, ...]] = {}  # product -> "X replaces Y (failed)" lines
    incomplete: tuple[tuple[str, str], ...] = ()  # (set, reason)
    substitutions: tuple[str, ...] = ()
    recipe_seconds: float = 0.0  # sum of the recipes' own time
    tasks: int = 0

    def headline(self) -> str:
        """The run's story in one line: ``11 products: 8 made, 2 failed, 1 substituted``."""
        total = len(self.made) + len(self.skipped) + len(self.failed) + len(self.incomplete)
        parts = [
            f"{len(self.made)} made",
            f"{len(self.skipped) - len(set(self.skipped) & set(self.failed))} skipped",
            f"{len(self.failed)} failed",
            f"{len(self.incomplete)} incomplete",
            f"{len(self.replaced)} substituted",
        ]
        return f"{total} products: " + ", ".join(p for p in parts if not p.startswith("0 "))

    def line(self) -> str:
        return (
            f"calibrate: session={self.session} made={len(self.made)} "
            f"skipped={len(self.skipped)} failed={len(self.failed)} "
            f"incomplete={len(self.incomplete)} substitutions={len(self.substitutions)}"
        )
