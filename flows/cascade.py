"""The ``calibration-cascade`` flow: run the organiser's plan, recipe level by recipe level.

Each level maps its recipe task over that level's complete SOFs. Statuses are re-read before
each level, so a product that failed (its recipe or its QC) is replaced in every downstream
SOF by the next-best product in the same run; the SOF files show the substitution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from astroflow.flows import params, report
from astroflow.flows.common import collect, publish_errors
from astroflow.flows.runners import make_task_runner
from astroflow.models.cascade import CascadeSummary, RecipeInput, RecipeResult
from astroflow.models.errors import ConfigError, ErrorReport, ErrorStack
from astroflow.models.rules import load_rules
from astroflow.storage.disk import require_free
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.headers import image_pixels
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.cascade import recipe_task
from astroflow.tasks.organiser import open_session_task, refresh_sofs_task
from astroflow.tasks.recipes import declared_qc, rules_recipes


def estimated_bytes(inputs: list[RecipeInput], planes: int = 1) -> int:
    """What a level of the cascade writes, at most: each product not made yet (float32, its
    ``planes`` images: a reduced frame with its variance and mask has 3) and the pixel cache
    of its frames."""
    total = 0
    for inp in inputs:
        if not inp.raw or (Path(inp.product_path).exists() and not inp.overwrite):
            continue  # (an existing product is most likely up to date: skipped)
        pixels = image_pixels(Path(inp.raw[0]))
        total += pixels * 4 * planes + (pixels * 4 * len(inp.raw) if inp.calibrations else 0)
    return total


@flow(name="cascade-levels")
def cascade_levels(
    workspace: str, session: str, overwrite: bool, recipes: list[str] | None
) -> CascadeSummary:
    logger = get_run_logger()
    ws = Workspace.open(workspace, writable=True)
    db = ws.database()
    rules = load_rules(ws.session_row(session).rules)
    registered = rules_recipes(rules)
    qc_ranges = ws.qc_ranges(session, declared_qc(rules))
    sets, products = catalog.load_plan(db)
    if not sets:
        raise ConfigError(f"{ws.root}: nothing predicted; run `astroflow prep` first")
    by_name = {p.name: p for p in products}
    wanted = recipes or [r.name for r in rules.recipes]
    results: list[RecipeResult] = []
    errors = ErrorStack()
    incomplete: list[tuple[str, str]] = []
    substitutions: list[str] = []
    replaced: dict[str, tuple[str, ...]] = {}
    for recipe in rules.recipes:
        sofs = refresh_sofs_task(ws.ref, rules, session)
        if recipe.name not in wanted:
            continue
        level = [s for s in sofs if s.recipe == recipe.name]
        incomplete += [(s.set_name, s.reason) for s in level if not s.complete]
        runnable = [s for s in level if s.complete]
        inputs = [
            RecipeInput(
                workspace=ws.ref,
                session=session,
                recipe=recipe.name,
                set_name=s.set_name,
                product=s.set_name,
                product_path=str(ws.product_path(session, by_name[s.set_name].filepath)),
                raw=tuple(
                    str(ws.root / line.path) for line in s.lines if line.tag == recipe.raw_tag
                ),
                calibrations=tuple(
                    (line.tag, str(ws.root / line.path))
                    for line in s.lines
                    if line.tag != recipe.raw_tag
                ),
                min_frames=recipe.min_frames,
                qc_ranges=qc_ranges.get(recipe.name, {}),
                overwrite=overwrite,
                exptime_key=rules.keywords.get("exptime", "EXPTIME"),
                gain_key=rules.keywords.get("gain", "GAIN"),
                substitutions=s.substitutions,
                function=recipe.function,
            )
            for s in runnable
        ]
        require_free(
            ws.session_dir(session),
            estimated_bytes(inputs, 1 + len(registered[recipe.name].planes)),
            f"the {recipe.name} level ({len(inputs)} product(s))",
        )
        substitutions += [f"{s.set_name}: {sub}" for s in runnable for sub in s.substitutions]

        replaced |= {s.set_name: s.substitutions for s in runnable if s.substitutions}
        logger.info(
            "%s: %d SOF(s) to run, %d incomplete",
            recipe.name,
            len(inputs),
            len(level) - len(inputs),
        )
        futures = recipe_task(registered[recipe.name]).map(inputs)
        done, level_errors = collect(futures, [i.product for i in inputs], recipe.name)
        results.extend(done.values())
        errors = errors + level_errors
        for r in done.values():
            if r.status == "fail":  # failed its QC now, or before with the same inputs
                errors = errors + ErrorReport(
                    error_type="QCFailure" if r.outcome == "failed" else "FailedBefore",
                    message=r.message
                    + ("" if r.outcome == "failed" else " (inputs unchanged: not redone)"),
                    step=recipe.name,
                    inputs=(r.product,),
                    expected=True,
                )
            for d in r.dropped:
                errors = errors + ErrorReport(
                    error_type="ProcessingError",
                    message=d,
                    step=recipe.name,
                    inputs=(r.product,),
                    expected=True,
                    critical=False,
                )
    # final SOFs reflect every status of this run
    refresh_sofs_task(ws.ref, rules, session)
    failed = {r.product for r in results if r.status == "fail"} | set(errors.failed_inputs())
    reasons = {r.product: r.message for r in results if r.status == "fail"}
    kinds: dict[str, Any] = {
        r.product: "qc" if r.outcome == "failed" else "unchanged"
        for r in results
        if r.status == "fail"
    }
    recipe_of = {r.product: r.recipe for r in results}
    for raised in errors.critical:
        if raised.error_type in ("QCFailure", "FailedBefore"):
            continue
        reasons.setdefault(raised.inputs[0], f"{raised.error_type}: {raised.message}")
        kinds.setdefault(raised.inputs[0], "recipe")
        recipe_of.setdefault(raised.inputs[0], raised.step)
    recipe_of |= {n: by_name[n].recipe for n, _ in incomplete if n in by_name}
    summary = CascadeSummary(
        session=session,
        made=tuple(r.product for r in results if r.outcome == "made"),
        skipped=tuple(r.product for r in results if r.outcome == "skipped"),
        failed=tuple(sorted(failed)),
        reasons=reasons,
        failure_kinds=kinds,
        recipes=recipe_of,
        replaced=replaced,
        incomplete=tuple(incomplete),
        substitutions=tuple(substitutions),
        recipe_seconds=sum(r.seconds for r in results),
        tasks=len(results),
    )
    report.publish(
        "cascade-report",
        f"Calibration cascade, session {session}",
        summary.headline(),
        cascade_sections(ws, summary, errors),
    )
    publish_errors(errors, "cascade-errors", "Cascade errors")
    logger.info("%s", summary.line())
    return report.finish(summary.headline(), summary)


@flow(name="calibration-cascade")
def calibration_cascade(
    workspace: params.Workspace,
    session: params.Session = None,
    overwrite: params.Overwrite = False,
    recipes: params.Recipes = None,
    task_runner: params.TaskRunner = "threads",
) -> CascadeSummary:
    """Run every recipe of the workspace's predicted cascade.

    Parameters
    ----------
    workspace
        A prepared workspace (``astroflow prep``).
    session
        Session id (default: the current session).
    overwrite
        Redo products that exist (or failed before) with unchanged inputs.
    recipes
        Only these recipes (default: all, in cascade order).
    task_runner
        ``threads``, ``dask-local`` (a Dask LocalCluster of 2 workers) or ``tcp://host:port``
        (an existing Dask scheduler).
    """
    ws = Workspace.open(workspace, writable=True)
    session = ws.resolve_session(session)
    swept = open_session_task(ws.ref, session)
    if swept:
        get_run_logger().info("removed %d pixel cache(s) left by killed runs", swept)
    runner = make_task_runner(task_runner)
    summary = cascade_levels.with_options(task_runner=runner)(
        str(ws.root), session, overwrite, recipes
    )
    report.publish(
        "calibration-report",
        f"Calibration cascade of {ws.root}, session {session}",
        summary.headline(),
        cascade_sections(ws, summary, None),
    )
    return report.finish(summary.headline(), summary)


def cascade_sections(
    ws: Workspace, summary: CascadeSummary, errors: ErrorStack | None
) -> list[str]:
    """The cascade's part of a report: every product (failures first, with the reason and
    what replaced what), the QC values against their ranges, and (in the run that has them)
    the error reports."""
    rows = []
    for name in summary.failed:
        kind = summary.failure_kinds.get(name, "recipe")
        outcome = {"qc": "**failed QC**", "recipe": "**failed (recipe)**"}.get(
            kind, "**failed before** (inputs unchanged)"
        )
        rows.append((0, name, outcome, summary.reasons.get(name, "")))
    rows += [(1, name, "incomplete", why) for name, why in summary.incomplete]
    failed = set(summary.failed)
    rows += [(2, n, "made", "") for n in summary.made]
    rows += [
        (3, n, "skipped (exists, inputs unchanged)", "") for n in summary.skipped if n not in failed
    ]
    product_rows = [
        (
            name,
            summary.recipes.get(name, ""),
            outcome,
            why,
            "; ".join(summary.replaced.get(name, ())),
        )
        for _, name, outcome, why in sorted(rows, key=lambda r: (r[0], r[1]))
    ]
    qc_rows = [
        (
            q.product,
            q.qc_name,
            report.qc_value(q.value),
            f"[{report.qc_value(q.min)}, {report.qc_value(q.max)}]" if q.min is not None else "",
            "**out of range**" if q.flag else "ok",
        )
        for q in sorted(
            catalog.qc_rows(ws.database(), summary.session), key=lambda q: (not q.flag, q.product)
        )
    ]
    sections = [
        "### Products\n\n"
        + report.table(["product", "recipe", "outcome", "reason", "substituted"], product_rows),
        "### QC (inclusive ranges)\n\n"
        + report.table(["product", "metric", "value", "range", "verdict"], qc_rows),
    ]
    if errors is not None:
        sections.append(report.errors_section(errors, "Error reports"))
    return sections


__all__ = ["calibration_cascade", "cascade_levels", "make_task_runner"]
