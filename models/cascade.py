"""Values passed between the cascade's flow and its recipe tasks (small: paths, not pixels)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from astroflow.models.rules import BadPixelMask, Combine, CosmicRays, Detector, Solve

#: The header keyword in which a reduced frame says where its WCS came from
#: (``astrometry``: the solve step's solution).
WCS_ORIGIN_KEY = "AF_WCSRC"


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
    detector: Detector | None = None  # how to pre-process raw frames (rules YAML)
    cosmic_rays: CosmicRays | None = None  # reduce: cosmic-ray detection (rules YAML)
    combine: Combine = Combine()  # masters: how their frames are combined (rules YAML)
    image_quality: bool = True  # reduce: image-quality QC with sep (rules YAML)
    bad_pixels: str | None = None  # reduce: the instrument's static bad-pixel mask (FITS)
    bad_pixel_mask: BadPixelMask = BadPixelMask()  # mbpm: how the mask is derived (rules YAML)
    solve: Solve = Solve()  # reduce: the astrometric solution (rules YAML)
    # the image extension of multi-extension frames this run makes, (EXTNAME, EXTVER)
    extension: tuple[str, int] | None = None


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
    # what the recipe could not do but went on without: (error type, message), noncritical
    notes: tuple[tuple[str, str], ...] = ()
    substitutions: tuple[str, ...] = ()
    seconds: float = 0.0  # time spent in the recipe itself (reading, maths, writing)


OutcomeKind = Literal[
    "made", "skipped", "failed_qc", "failed_before", "failed_recipe", "incomplete"
]


class Outcome(BaseModel):
    """What became of one product in one run of the cascade (a typed value; the reports
    render it, nothing parses it back).

    Attributes
    ----------
    kind
        ``made``; ``skipped`` (exists, inputs unchanged); ``failed_qc`` (made, outside its QC
        ranges: ``qc`` holds the values, ``reason`` which failed); ``failed_before`` (failed
        before with the same inputs: not redone); ``failed_recipe`` (its recipe raised:
        ``error_type`` and ``reason``); ``incomplete`` (its SOF lacks a calibration:
        ``reason``).
    substituted
        ``"<used> replaces <failed> (failed)"`` for each calibration that stood in for a failed
        one in its SOF.
    dropped
        Input frames its recipe left out, with the reasons.
    """

    model_config = ConfigDict(frozen=True)

    product: str
    recipe: str
    kind: OutcomeKind
    reason: str = ""
    error_type: str = ""
    qc: dict[str, float] = {}
    substituted: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    notes: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.kind.startswith("failed")


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
    outcomes: tuple[Outcome, ...] = ()  # every product of the run, as typed values

    @classmethod
    def of(cls, session: str, outcomes: list[Outcome]) -> CascadeSummary:
        """The summary of a run from its outcomes (the lists and maps are views of them)."""
        ran = [o for o in outcomes if o.kind != "incomplete"]
        failed = [o for o in outcomes if o.failed]
        kinds = {"failed_qc": "qc", "failed_recipe": "recipe", "failed_before": "unchanged"}
        return cls(
            session=session,
            made=tuple(o.product for o in outcomes if o.kind == "made"),
            skipped=tuple(o.product for o in outcomes if o.kind in ("skipped", "failed_before")),
            failed=tuple(sorted(o.product for o in failed)),
            reasons={o.product: o.reason for o in failed},
            failure_kinds={o.product: kinds[o.kind] for o in failed},  # type: ignore[misc]
            recipes={o.product: o.recipe for o in outcomes},
            replaced={o.product: o.substituted for o in ran if o.substituted},
            incomplete=tuple((o.product, o.reason) for o in outcomes if o.kind == "incomplete"),
            substitutions=tuple(f"{o.product}: {sub}" for o in ran for sub in o.substituted),
            recipe_seconds=sum(o.seconds for o in ran),
            tasks=sum(o.kind != "failed_recipe" for o in ran),
            outcomes=tuple(outcomes),
        )

    def failures(self) -> dict[str, str]:
        """Each failed product's reason and what it held back downstream: the products that
        used another calibration in its place, and the sets left incomplete without it
        (``QC failed: ...; held back: X (substituted), Y (incomplete)``)."""
        out = {}
        for name in self.failed:
            held = [
                f"{product} (substituted)"
                for product, lines in sorted(self.replaced.items())
                if any(f"replaces {name}" in line for line in lines)
            ]
            held += [f"{product} (incomplete)" for product, why in self.incomplete if name in why]
            reason = self.reasons.get(name, "")
            out[name] = f"{reason}; held back: {', '.join(held)}" if held else reason
        return out

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

    def counts(self) -> dict[str, int]:
        """The run's counts (the payload of its events)."""
        return {
            "made": len(self.made),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "incomplete": len(self.incomplete),
            "substituted": len(self.replaced),
        }

    def line(self) -> str:
        return (
            f"calibrate: session={self.session} made={len(self.made)} "
            f"skipped={len(self.skipped)} failed={len(self.failed)} "
            f"incomplete={len(self.incomplete)} substitutions={len(self.substitutions)}"
        )
