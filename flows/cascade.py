"""The ``calibration-cascade`` flow: run the organiser's plan, recipe level by recipe level.

Each level maps its recipe task over that level's complete SOFs. Statuses are re-read before
each level, so a product that failed (its recipe or its QC) is replaced in every downstream
SOF by the next-best product in the same run; the SOF files show the substitution.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import State

from astroflow.flows import params, report
from astroflow.flows.common import collect, publish_errors
from astroflow.flows.locks import one_run_at_a_time
from astroflow.flows.names import run_name
from astroflow.flows.runners import make_task_runner
from astroflow.models.cascade import CascadeSummary
from astroflow.models.errors import ErrorStack
from astroflow.storage.disk import require_free
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.cascade import recipe_task
from astroflow.tasks.cascade_service import CascadePlan
from astroflow.tasks.organiser import open_session_task, refresh_sofs_task


@flow(name="cascade-levels")
def cascade_levels(
    workspace: str, session: str, overwrite: bool, recipes: list[str] | None
) -> CascadeSummary:
    """Each recipe level in cascade order: SOFs refreshed from the statuses so far (a failed
    product is replaced by the next best), the level's recipe task mapped over its complete
    SOFs, the outcomes recorded (:class:`~astroflow.tasks.cascade_service.CascadePlan`)."""
    logger = get_run_logger()
    ws = Workspace.open(workspace, writable=True)
    plan = CascadePlan(ws, session, overwrite, recipes)
    for rules, recipe in plan.levels:
        sofs = refresh_sofs_task(ws.ref, plan.rules, session)
        inputs = plan.level(rules, recipe, sofs)
        if recipe.name not in plan.wanted:
            continue
        require_free(
            ws.session_dir(session),
            plan.estimated_bytes(rules, inputs),
            f"the {recipe.name} level ({len(inputs)} product(s))",
        )
        incomplete = sum(
            s.recipe == recipe.name and s.rules == rules.name and not s.complete for s in sofs
        )
        logger.info("%s: %d SOF(s) to run, %d incomplete", recipe.name, len(inputs), incomplete)
        futures = recipe_task(plan.recipe(rules, recipe)).map(inputs)
        done, raised = collect(futures, [i.product for i in inputs], recipe.name)
        plan.record(inputs, done, raised)
    refresh_sofs_task(ws.ref, plan.rules, session)  # the final SOFs reflect every status
    summary, errors = plan.summary(), plan.reports()
    report.publish(
        "cascade-report",
        f"Calibration cascade, session {session}",
        summary.headline(),
        cascade_sections(ws, summary, errors),
        failures=summary.failures(),
    )
    publish_errors(errors, "cascade-errors", "Cascade errors")
    logger.info("%s", summary.line())
    return finish(summary, "cascade-report")


@flow(
    name="calibration-cascade",
    flow_run_name=run_name("calibrate", "workspace", "session", fallback="current"),
)
@one_run_at_a_time("workspace", "workspace")
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
        failures=summary.failures(),
    )
    return finish(summary, "calibration-report")


def finish(summary: CascadeSummary, report_key: str) -> State[CascadeSummary]:
    """A cascade run's end: its headline, and its signals (failed products with reasons)."""
    return report.finish(
        summary.headline(),
        summary,
        counts=summary.counts(),
        failures=summary.failures(),
        report_key=report_key,
    )


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
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    product_rows = [(n, summary.recipes.get(n, ""), outcome) for _, n, outcome, _ in ordered]
    # reasons and substitutions below the table, one line each (they wrap; table columns
    # would widen the page past the screen)
    reasons = "".join(f"- **{name}**: {why}\n" for _, name, _, why in ordered if why)
    substituted = "".join(
        f"- **{name}**: {'; '.join(summary.replaced[name])}\n"
        for _, name, _, _ in ordered
        if summary.replaced.get(name)
    )
    qc_rows = [
        (
            q.product,
            q.qc_name,
            report.qc_value(q.value),
            report.qc_range(q.min, q.max),
            "**out of range**" if q.flag else "ok",
        )
        for q in sorted(
            catalog.qc_rows(ws.database(), summary.session), key=lambda q: (not q.flag, q.product)
        )
    ]
    sections = [
        "### Products\n\n"
        + report.table(["product", "recipe", "outcome"], product_rows)
        + (f"\nWhy:\n\n{reasons}" if reasons else "")
        + (f"\nSubstituted calibrations:\n\n{substituted}" if substituted else ""),
        "### QC (inclusive ranges)\n\n"
        + report.table(
            ["product", "metric", "value", "range", "verdict"], qc_rows, numeric=("value",)
        ),
    ]
    trend = quality_trend_section(ws, summary)
    if trend:
        sections.append(trend)
    if errors is not None:
        sections.append(report.errors_section(errors, "Error reports"))
    return sections


def quality_trend_section(ws: Workspace, summary: CascadeSummary) -> str:
    """A picture per night of the run's reduced frames: FWHM and sky against time (PNG in the
    markdown, as a data URI: the report needs no server), frames that failed QC in red;
    ``""`` when no frame of the run has image-quality values. A multi-extension frame is
    drawn at the mean of its extensions' values."""
    import base64

    from astroflow.processing.qc_plot import TrendPoint, night_trend_png

    ran = set(summary.recipes)
    values: dict[str, dict[str, list[float]]] = {}
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for q in catalog.qc_rows(ws.database(), summary.session):
        metric = q.qc_name.split("[")[0]  # fwhm[SCI,2] -> fwhm
        if q.product not in ran or metric not in ("fwhm", "sky_median") or q.value is None:
            continue
        values.setdefault(q.product, {}).setdefault(metric, []).append(q.value)
        if metric == "fwhm":
            ranges.setdefault(q.product, (q.min, q.max))
    if not values:
        return ""
    _, products = catalog.load_plan(ws.database())
    failed = set(summary.failed)
    nights: dict[str, list[TrendPoint]] = {}
    for product in products:
        measured = values.get(product.name)
        if not measured:
            continue

        def mean(metric: str, measured: dict[str, list[float]] = measured) -> float | None:
            found = measured.get(metric)
            return sum(found) / len(found) if found else None

        nights.setdefault(product.night, []).append(
            TrendPoint(product.mjd, mean("fwhm"), mean("sky_median"), product.name in failed)
        )
    fwhm_range = next(iter(ranges.values()), (None, None))
    pictures = []
    for night, points in sorted(nights.items()):
        png = base64.b64encode(night_trend_png(night, points, fwhm_range)).decode("ascii")
        pictures.append(f"![FWHM and sky of night {night}](data:image/png;base64,{png})\n")
    return "### Image quality over the night\n\n" + "\n".join(pictures)


__all__ = ["calibration_cascade", "cascade_levels", "make_task_runner"]
