"""Commands of the data organiser and the cascade: prep, session, list, calibrate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from astroflow.flows.cli.common import (
    DaskOpt,
    SessionOpt,
    WorkspaceArg,
    app,
    run_stage,
    table,
    task_runner,
)

session_app = typer.Typer(help="Manage reduction sessions of a workspace.", no_args_is_help=True)
list_app = typer.Typer(help="Show the organiser's tables.", no_args_is_help=True)
app.add_typer(session_app, name="session")
app.add_typer(list_app, name="list")


@app.command("prep")
def prep_cmd(
    workspace: WorkspaceArg,
    refresh: Annotated[bool, typer.Option(help="Rebuild the inventory from the files.")] = False,
    rules: Annotated[str | None, typer.Option(help="Ruleset name or YAML path.")] = None,
) -> None:
    """Organise raw frames, predict every product and write the SOF files."""
    from astroflow.flows.organiser import prepare_workspace

    s = run_stage(prepare_workspace, workspace=workspace, refresh=refresh, rules=rules)
    typer.echo(
        f"prep: session={s.session} raw={s.raw_frames} new={s.new_frames} "
        f"removed={s.removed_frames} rejected={len(s.rejected)} headers_read={s.headers_read} "
        f"sets={s.sets} incomplete={s.incomplete_sets} products={s.products} "
        f"sofs_written={s.sofs_written}"
    )
    for name, reason in s.rejected:
        typer.echo(f"  rejected {name}: {reason}")


@session_app.command("create")
def session_create(
    workspace: WorkspaceArg,
    session_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="Session id (default: the time).")
    ] = None,
    rules: Annotated[str | None, typer.Option(help="Ruleset for the session.")] = None,
) -> None:
    """Create a session and make it current; its settings/ gets the default QC ranges."""
    from astroflow.flows.organiser import refresh_session

    ws = run_stage(_workspace, path=workspace, writable=True)
    name = run_stage(ws.create_session, name=session_id, rules=rules)
    run_stage(refresh_session, workspace=workspace, session=name)
    typer.echo(f"session {name} created (current)")


@session_app.command("list")
def session_list(workspace: WorkspaceArg) -> None:
    """List sessions; * marks the current one."""
    ws = run_stage(_workspace, path=workspace)
    table(
        ["", "id", "rules", "created"],
        [["*" if s.current else "", s.name, s.rules, s.created_at] for s in run_stage(ws.sessions)],
    )


@session_app.command("switch")
def session_switch(
    workspace: WorkspaceArg, session_id: Annotated[str, typer.Argument(metavar="ID")]
) -> None:
    """Make another session current."""
    ws = run_stage(_workspace, path=workspace, writable=True)
    run_stage(ws.switch_session, name=session_id)
    typer.echo(f"current session: {session_id}")


@session_app.command("refresh")
def session_refresh(
    workspace: WorkspaceArg,
    session_id: Annotated[str | None, typer.Argument(metavar="[ID]")] = None,
) -> None:
    """Redo a session's calibration matching and SOF files from its statuses."""
    from astroflow.flows.organiser import refresh_session

    name, written = run_stage(refresh_session, workspace=workspace, session=session_id)
    typer.echo(f"session {name}: {written} SOF files written")


def _workspace(path: str, writable: bool = False) -> Any:
    from astroflow.storage.organiser.workspace import Workspace

    return Workspace.open(path, writable=writable)


def _opened(workspace: str, session: str | None = None) -> tuple[Any, Any, str]:
    """The workspace, its database and the session meant (for the listings; a workspace
    without sessions lists no statuses)."""
    ws = run_stage(_workspace, path=workspace)
    db = run_stage(ws.database)
    if session is None and not run_stage(ws.sessions):
        return ws, db, ""
    return ws, db, run_stage(ws.resolve_session, session=session)


Json = Annotated[
    bool, typer.Option("--json", help="One JSON object per row (stable keys) instead of a table.")
]
TypeOpt = Annotated[str | None, typer.Option("--type", help="Only frames of this type.")]
FilterOpt = Annotated[str | None, typer.Option("--filter", help="Only this filter.")]
NightOpt = Annotated[str | None, typer.Option("--night", help="Only this night (YYYY-MM-DD).")]
RecipeOpt = Annotated[str | None, typer.Option("--recipe", help="Only this recipe.")]
Unprocessed = Annotated[
    bool,
    typer.Option(
        "--unprocessed", help="Only what no passing product covers yet (frames) or has not passed."
    ),
]


def _show(rows: list[dict[str, Any]], as_json: bool) -> None:
    """The rows as a table (keys are the columns) or as JSON lines."""
    if as_json:
        import json

        for row in rows:
            typer.echo(json.dumps(row, sort_keys=True, default=str))
        return
    headers = list(rows[0]) if rows else []
    table(headers, [[row[h] for h in headers] for row in rows])


def _keep(value: Any, wanted: str | None) -> bool:
    return wanted is None or str(value) == wanted


@list_app.command("raw")
def list_raw(
    workspace: WorkspaceArg,
    sof: Annotated[
        Path | None, typer.Option("--sof", help="Only the frames of this SOF file.")
    ] = None,
    kind: TypeOpt = None,
    band: FilterOpt = None,
    night: NightOpt = None,
    unprocessed: Unprocessed = False,
    session: SessionOpt = None,
    as_json: Json = False,
) -> None:
    """Raw frames (keys: file, type, night, binning, filter, exptime, gain, readout, mjd,
    rules)."""
    from astroflow.storage.organiser import catalog

    _, db, name = _opened(workspace, session)
    frames = sorted(catalog.load_frames(db).items())
    in_sof: set[str] | None = None
    if sof is not None:
        from astroflow.tasks.organiser_work import sof_files

        in_sof = run_stage(sof_files, path=sof)
    done: set[str] = set()
    if unprocessed:
        statuses = catalog.statuses(db, name)
        sets, products = catalog.load_plan(db)
        passed = {p.set_name for p in products if statuses.get(p.name) == "pass"}
        done = {f for s in sets if s.name in passed for f in s.frames}
    rows = [
        {
            "file": path,
            "type": info.kind,
            "night": info.night,
            "binning": info.binning,
            "filter": info.filter,
            "exptime": info.exptime,
            "gain": info.gain,
            "readout": info.readout,
            "mjd": round(info.mjd_obs, 5),
            "rules": info.rules,
        }
        for path, (_, info) in frames
        if (in_sof is None or any(entry.endswith(path) for entry in in_sof))
        and _keep(info.kind, kind)
        and _keep(info.filter, band)
        and _keep(info.night, night)
        and path not in done
    ]
    _show(rows, as_json)


@list_app.command("misc")
def list_misc(workspace: WorkspaceArg, as_json: Json = False) -> None:
    """Files prep set aside in misc/, and why (keys: file, reason)."""
    from astroflow.storage.organiser import catalog

    _, db, _ = _opened(workspace)
    rows = [{"file": path, "reason": reason} for path, reason in sorted(catalog.rejected(db))]
    _show(rows, as_json)


@list_app.command("obs")
def list_obs(
    workspace: WorkspaceArg, band: FilterOpt = None, night: NightOpt = None, as_json: Json = False
) -> None:
    """Science observations (keys: file, object, night, filter, exptime, mjd)."""
    from astroflow.storage.organiser import catalog

    _, db, _ = _opened(workspace)
    frames = sorted(catalog.load_frames(db).items(), key=lambda kv: kv[1][1].mjd_obs)
    rows = [
        {
            "file": p,
            "object": i.object,
            "night": i.night,
            "filter": i.filter,
            "exptime": i.exptime,
            "mjd": round(i.mjd_obs, 5),
        }
        for p, (_, i) in frames
        if i.kind == "science" and _keep(i.filter, band) and _keep(i.night, night)
    ]
    _show(rows, as_json)


@list_app.command("sets")
def list_sets(
    workspace: WorkspaceArg, recipe: RecipeOpt = None, night: NightOpt = None, as_json: Json = False
) -> None:
    """Predicted recipe input sets (keys: name, recipe, night, frames, complete, reason)."""
    from astroflow.storage.organiser import catalog

    _, db, _ = _opened(workspace)
    sets, _ = catalog.load_plan(db)
    rows = [
        {
            "name": s.name,
            "recipe": s.recipe,
            "night": s.night,
            "frames": len(s.frames),
            "complete": s.complete,
            "reason": s.reason,
        }
        for s in sets
        if _keep(s.recipe, recipe) and _keep(s.night, night)
    ]
    _show(rows, as_json)


@list_app.command("products")
def list_products(
    workspace: WorkspaceArg,
    session: SessionOpt = None,
    recipe: RecipeOpt = None,
    night: NightOpt = None,
    unprocessed: Unprocessed = False,
    as_json: Json = False,
) -> None:
    """Predicted products with their status in a session (keys: name, recipe, tag, night,
    path, status: pass, fail, running, interrupted or - for not made)."""
    from astroflow.storage.organiser import catalog

    _, db, name = _opened(workspace, session)
    status = {
        product: catalog.shown_status(row) for product, row in catalog.status_rows(db, name).items()
    }
    _, products = catalog.load_plan(db)
    rows = [
        {
            "name": p.name,
            "recipe": p.recipe,
            "tag": p.tag,
            "night": p.night,
            "path": p.filepath,
            "status": status.get(p.name, "-"),
        }
        for p in products
        if _keep(p.recipe, recipe)
        and _keep(p.night, night)
        and not (unprocessed and status.get(p.name) == "pass")
    ]
    _show(rows, as_json)


@list_app.command("sofs")
def list_sofs(
    workspace: WorkspaceArg,
    session: SessionOpt = None,
    recipe: RecipeOpt = None,
    science: Annotated[
        bool, typer.Option("--science", help="Only the SOFs of science frames.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Set-of-files entries of a session (keys: sof, recipe, file, tag, complete)."""
    from astroflow.models.rules import load_rulebook
    from astroflow.storage.organiser import catalog

    ws, db, name = _opened(workspace, session)
    science_recipes: set[str] = set()
    if science and name:
        book = load_rulebook(ws.session_row(name).rules)
        science_recipes = {
            r.name for rs in book.rulesets for r in rs.recipes if r.kind == "science"
        }
    rows = [
        {"sof": r.sof, "recipe": r.recipe, "file": r.file, "tag": r.tag, "complete": r.complete}
        for r in catalog.sof_rows(db, name)
        if _keep(r.recipe, recipe) and (not science or r.recipe in science_recipes)
    ]
    _show(rows, as_json)


@app.command("calibrate")
def calibrate_cmd(
    workspace: WorkspaceArg,
    session: SessionOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Redo products that exist.")] = False,
    recipe: Annotated[
        list[str] | None, typer.Option("--recipe", help="Only this recipe (repeatable).")
    ] = None,
    dask: DaskOpt = None,
) -> None:
    """Run the calibration cascade of a prepared workspace (recipes on Dask with --dask)."""
    from astroflow.flows.cascade import calibration_cascade

    runner = task_runner(dask)
    s = run_stage(
        calibration_cascade,
        workspace=workspace,
        session=session,
        overwrite=overwrite,
        recipes=recipe or None,
        task_runner=runner,
    )
    typer.echo(s.line())
    for name in s.failed:
        typer.echo(f"  failed {name}: {s.reasons.get(name, 'see the run in the Prefect UI')}")
    for name, why in s.incomplete:
        typer.echo(f"  incomplete {name}: {why}")
    for sub in s.substitutions:
        typer.echo(f"  substituted {sub}")


@app.command("qc")
def qc_cmd(workspace: WorkspaceArg, session: SessionOpt = None, as_json: Json = False) -> None:
    """QC values of a session's products judged against the ranges in force now (--json: one
    object per product and metric, keys product, recipe, metric, value, lo, hi, verdict)."""

    from astroflow.tasks.organiser_work import qc_table

    ws, _, name = _opened(workspace, session)
    judged = run_stage(qc_table, workspace=ws.ref, session=name) if name else []
    if as_json:
        _show(judged, as_json=True)
        return
    rows = [
        [
            q["product"],
            q["metric"],
            "nan" if q["value"] is None else f"{q['value']:.4g}",
            "" if q["lo"] is None else f"[{q['lo']:g}, {q['hi']:g}]",
            {"pass": "pass", "fail": "FAIL"}.get(q["verdict"], "-"),
        ]
        for q in judged
    ]
    table(["product", "metric", "value", "range", "verdict"], rows)
