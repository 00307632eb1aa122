"""Commands of the data organiser and the cascade: prep, session, list, calibrate."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from astroflow.flows.cli.common import SessionOpt, WorkspaceArg, app, run_stage, table

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
    from astroflow.storage.workspace import Workspace

    return Workspace.open(path, writable=writable)


def _opened(workspace: str, session: str | None = None) -> tuple[Any, Any, str]:
    """The workspace, its database and the session meant (for the listings; a workspace
    without sessions lists no statuses)."""
    ws = run_stage(_workspace, path=workspace)
    db = run_stage(ws.database)
    if session is None and not run_stage(ws.sessions):
        return ws, db, ""
    return ws, db, run_stage(ws.resolve_session, session=session)


@list_app.command("raw")
def list_raw(workspace: WorkspaceArg) -> None:
    """Raw frames."""
    from astroflow.storage import catalog

    _, db, _ = _opened(workspace)
    rows = sorted(catalog.load_frames(db).items())
    table(
        ["file", "kind", "night", "binning", "filter", "exptime", "gain", "readout", "mjd"],
        [
            [
                p,
                i.kind,
                i.night,
                i.binning,
                i.filter,
                f"{i.exptime:g}",
                i.gain,
                i.readout,
                f"{i.mjd_obs:.5f}",
            ]
            for p, (_, i) in rows
        ],
    )


@list_app.command("obs")
def list_obs(workspace: WorkspaceArg) -> None:
    """Science observations (object frames)."""
    from astroflow.storage import catalog

    _, db, _ = _opened(workspace)
    rows = sorted(catalog.load_frames(db).items(), key=lambda kv: kv[1][1].mjd_obs)
    table(
        ["file", "object", "night", "filter", "exptime", "mjd"],
        [
            [p, i.object, i.night, i.filter, f"{i.exptime:g}", f"{i.mjd_obs:.5f}"]
            for p, (_, i) in rows
            if i.kind == "science"
        ],
    )


@list_app.command("sets")
def list_sets(workspace: WorkspaceArg) -> None:
    """Predicted recipe input sets."""
    from astroflow.storage import catalog

    _, db, _ = _opened(workspace)
    sets, _ = catalog.load_plan(db)
    table(
        ["set", "recipe", "night", "frames", "complete", "reason"],
        [
            [s.name, s.recipe, s.night, len(s.frames), "yes" if s.complete else "no", s.reason]
            for s in sets
        ],
    )


@list_app.command("products")
def list_products(workspace: WorkspaceArg, session: SessionOpt = None) -> None:
    """Predicted products with their status in a session."""
    from astroflow.storage import catalog

    _, db, name = _opened(workspace, session)
    status = {
        product: catalog.shown_status(st, message)
        for product, (st, message) in catalog.status_rows(db, name).items()
    }
    _, products = catalog.load_plan(db)
    table(
        ["product", "recipe", "tag", "path", "status"],
        [[p.name, p.recipe, p.tag, p.filepath, status.get(p.name, "-")] for p in products],
    )


@list_app.command("sofs")
def list_sofs(workspace: WorkspaceArg, session: SessionOpt = None) -> None:
    """Set-of-files entries of a session."""
    from astroflow.storage import catalog

    _, db, name = _opened(workspace, session)
    rows = catalog.sof_rows(db, name)
    table(
        ["sof", "file", "tag", "complete"],
        [[r.sof, r.file, r.tag, "yes" if r.complete else "no"] for r in rows],
    )


@app.command("calibrate")
def calibrate_cmd(
    workspace: WorkspaceArg,
    session: SessionOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Redo products that exist.")] = False,
    recipe: Annotated[
        list[str] | None, typer.Option("--recipe", help="Only this recipe (repeatable).")
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="ADDRESS|local",
            help="Run recipes on Dask: 'local' (a LocalCluster) or tcp://host:port.",
        ),
    ] = None,
) -> None:
    """Run the calibration cascade of a prepared workspace."""
    from astroflow.flows.cascade import calibration_cascade

    runner = "threads" if dask is None else ("dask-local" if dask == "local" else dask)
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
