"""The calibration cascade as a Prefect-free service: which SOFs each recipe level runs, and
what became of every product, as typed :class:`~astroflow.models.cascade.Outcome` values.

The ``calibration-cascade`` flow drives it: before each level it refreshes the SOFs (a task),
asks :meth:`CascadePlan.level` for the inputs of the complete ones, maps the level's recipe
task over them, and hands the results (and the exceptions of the runs that raised) to
:meth:`CascadePlan.record`. The reports render :meth:`CascadePlan.summary` and
:meth:`CascadePlan.reports`; nothing is parsed back out of a message.
"""

from __future__ import annotations

from pathlib import Path

from astroflow.models.cascade import (
    CascadeSummary,
    Outcome,
    OutcomeKind,
    RecipeInput,
    RecipeResult,
)
from astroflow.models.errors import ConfigError, ErrorReport, ErrorStack
from astroflow.models.organiser import SofPlan
from astroflow.models.rules import Recipe as RecipeRule
from astroflow.models.rules import RuleSet, load_rulebook
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.headers import image_pixels
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.recipes import Recipe, declared_qc, rules_recipes

__all__ = ["CascadePlan", "outcome_of"]


def outcome_of(result: RecipeResult) -> Outcome:
    """The outcome a recipe task's result stands for."""
    kind: OutcomeKind
    if result.status == "pass":
        kind = "made" if result.outcome == "made" else "skipped"
    else:
        kind = "failed_qc" if result.outcome == "failed" else "failed_before"
    return Outcome(
        product=result.product,
        recipe=result.recipe,
        kind=kind,
        reason=result.message if kind.startswith("failed") else "",
        qc=result.qc,
        substituted=result.substitutions,
        dropped=result.dropped,
        notes=result.notes,
        seconds=result.seconds,
    )


class CascadePlan:
    """One run of a session's cascade: its rules, recipes, QC ranges and products, and the
    outcomes recorded so far.

    Parameters
    ----------
    ws
        The workspace (read only here; the tasks write).
    session
        The session (resolved).
    overwrite
        Redo products that exist (or failed before) with unchanged inputs.
    recipes
        Only these recipes run (default: all, in cascade order).

    Raises
    ------
    ConfigError
        When nothing was predicted, or a recipe of the rules cannot run.
    """

    def __init__(
        self, ws: Workspace, session: str, overwrite: bool, recipes: list[str] | None
    ) -> None:
        self.ws = ws
        self.session = session
        self.overwrite = overwrite
        self.rules = load_rulebook(ws.session_row(session).rules)
        self.recipes: dict[tuple[str, str], Recipe] = {
            (rs.name, name): recipe
            for rs in self.rules.rulesets
            for name, recipe in rules_recipes(rs).items()
        }
        self.qc_ranges = ws.qc_ranges(session, declared_qc(self.rules))
        sets, products = catalog.load_plan(ws.database())
        if not sets:
            raise ConfigError(f"{ws.root}: nothing predicted; run `astroflow prep` first")
        self.products = {p.name: p for p in products}
        self.wanted = recipes or [r.name for rs in self.rules.rulesets for r in rs.recipes]
        self.outcomes: list[Outcome] = []
        self.raised = ErrorStack()

    @property
    def levels(self) -> list[tuple[RuleSet, RecipeRule]]:
        """Each ruleset's recipes in cascade order, ruleset after ruleset (each level
        refreshes the SOFs; the wanted ones run)."""
        return [(rs, recipe) for rs in self.rules.rulesets for recipe in rs.recipes]

    def recipe(self, rules: RuleSet, recipe: RecipeRule) -> Recipe:
        """The registration of a ruleset's recipe."""
        return self.recipes[rules.name, recipe.name]

    def level(self, rules: RuleSet, recipe: RecipeRule, sofs: list[SofPlan]) -> list[RecipeInput]:
        """The inputs of the level's complete SOFs (none for a recipe not wanted); its
        incomplete ones are recorded as such."""
        if recipe.name not in self.wanted:
            return []
        level = [s for s in sofs if s.recipe == recipe.name and s.rules in ("", rules.name)]
        self.outcomes += [
            Outcome(product=s.set_name, recipe=recipe.name, kind="incomplete", reason=s.reason)
            for s in level
            if not s.complete
        ]
        root = self.ws.root
        return [
            RecipeInput(
                workspace=self.ws.ref,
                session=self.session,
                recipe=recipe.name,
                set_name=s.set_name,
                product=s.set_name,
                product_path=str(
                    self.ws.product_path(self.session, self.products[s.set_name].filepath)
                ),
                raw=tuple(str(root / line.path) for line in s.lines if line.tag == recipe.raw_tag),
                calibrations=tuple(
                    (line.tag, str(root / line.path))
                    for line in s.lines
                    if line.tag != recipe.raw_tag
                ),
                min_frames=recipe.min_frames,
                qc_ranges=self.qc_ranges.get(recipe.name, {}),
                overwrite=self.overwrite,
                exptime_key=rules.keywords.get("exptime", "EXPTIME"),
                gain_key=rules.keywords.get("gain", "GAIN"),
                substitutions=s.substitutions,
                function=recipe.function,
                detector=rules.detector,
                cosmic_rays=recipe.cosmic_rays,
                combine=recipe.combine,
                image_quality=recipe.image_quality,
                bad_pixels=recipe.bad_pixels,
                bad_pixel_mask=recipe.bad_pixel_mask,
                solve=recipe.solve,
            )
            for s in level
            if s.complete
        ]

    def estimated_bytes(self, rules: RuleSet, inputs: list[RecipeInput]) -> int:
        """What a level writes, at most: each product not made yet (float32, its primary
        image and the planes its recipe declares) and the pixel cache of its frames."""
        total = 0
        for inp in inputs:
            if not inp.raw or (Path(inp.product_path).exists() and not inp.overwrite):
                continue  # (an existing product is most likely up to date: skipped)
            pixels = image_pixels(Path(inp.raw[0]))
            planes = 1 + len(self.recipes[rules.name, inp.recipe].planes)
            total += pixels * 4 * planes + (pixels * 4 * len(inp.raw) if inp.calibrations else 0)
        return total

    def record(
        self, inputs: list[RecipeInput], results: dict[str, RecipeResult], raised: ErrorStack
    ) -> None:
        """A level's results (by product) and the error reports of the runs that raised."""
        self.raised = self.raised + raised
        by_product = {inp.product: inp for inp in inputs}
        for inp in inputs:
            if inp.product in results:
                self.outcomes.append(outcome_of(results[inp.product]))
        for report in raised.critical:
            product = report.inputs[0]
            if product in results or product not in by_product:
                continue
            self.outcomes.append(
                Outcome(
                    product=product,
                    recipe=report.step,
                    kind="failed_recipe",
                    reason=f"{report.error_type}: {report.message}",
                    error_type=report.error_type,
                    substituted=by_product[product].substitutions,
                )
            )

    def summary(self) -> CascadeSummary:
        return CascadeSummary.of(self.session, self.outcomes)

    def reports(self) -> ErrorStack:
        """The run's error reports: those of the recipes that raised, then one per product
        that failed its QC (now or before), and noncritical ones for each frame a recipe left
        out and each step it went on without (a frame that did not solve)."""
        rendered: list[ErrorReport] = []
        for o in self.outcomes:
            if o.kind in ("failed_qc", "failed_before"):
                unchanged = " (inputs unchanged: not redone)" if o.kind == "failed_before" else ""
                rendered.append(
                    ErrorReport(
                        error_type="QCFailure" if o.kind == "failed_qc" else "FailedBefore",
                        message=o.reason + unchanged,
                        step=o.recipe,
                        inputs=(o.product,),
                        expected=True,
                    )
                )
            rendered += [
                ErrorReport(
                    error_type="ProcessingError",
                    message=d,
                    step=o.recipe,
                    inputs=(o.product,),
                    expected=True,
                    critical=False,
                )
                for d in o.dropped
            ]
            rendered += [
                ErrorReport(
                    error_type=error_type,
                    message=message,
                    step=o.recipe,
                    inputs=(o.product,),
                    expected=True,
                    critical=False,
                )
                for error_type, message in o.notes
            ]
        return self.raised + ErrorStack(reports=tuple(rendered))
