"""The ``astroflow`` command line.

Each command runs a flow (or a storage check) and prints a short summary. The exit code is
non-zero only when the run itself could not proceed, not when one input failed.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="astroflow",
    help="Prefect pipelines for an observatory's nightly data: WWT tile repositories and CCD "
    "calibration cascades.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
repo_app = typer.Typer(help="Inspect data repositories.", no_args_is_help=True)
app.add_typer(repo_app, name="repo")

AzureConnEnv = Annotated[
    str | None,
    typer.Option(
        "--azure-conn-env",
        help="Name of the environment variable holding the Azure connection string "
        "(the string itself is never accepted on the command line).",
    ),
]


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("azure", "urllib3", "httpx", "httpcore", "fsspec", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@repo_app.command("check")
def repo_check(
    url: Annotated[str, typer.Argument(help="Repository URL or local path.")],
    azure_conn_env: AzureConnEnv = None,
) -> None:
    """Open a repository, list its top level, and report reachability and write permission."""
    from models.errors import AstroflowError
    from storage import open_repository

    try:
        repo = open_repository(url, azure_conn_env=azure_conn_env)
    except AstroflowError as exc:
        raise _fail(str(exc)) from None
    result = repo.check()
    typer.echo(f"repository: {result.url} ({result.backend})")
    typer.echo(f"reachable:  {'yes' if result.reachable else 'no'}")
    typer.echo(f"writable:   {'yes' if result.writable else 'no'}")
    if result.reachable:
        shown = ", ".join(result.entries[:20]) or "(empty)"
        more = f" ... ({len(result.entries)} entries)" if len(result.entries) > 20 else ""
        typer.echo(f"top level:  {shown}{more}")
    if result.error:
        typer.echo(f"error:      {result.error}")
    if not result.ok:
        raise typer.Exit(1)


Repo = Annotated[str, typer.Argument(help="Repository URL or local path.")]
WorkDirArg = Annotated[str, typer.Argument(help="Local work directory.")]


def _run_stage(fn: Any, **kwargs: Any) -> Any:
    """Run a flow; exit 2 with a clear message when the run itself cannot proceed."""
    from models.errors import AstroflowError

    try:
        return fn(**kwargs)
    except AstroflowError as exc:
        raise _fail(str(exc)) from None


def _print_summaries(summaries: Any) -> None:
    items = summaries if isinstance(summaries, list) else [summaries]
    for summary in items:
        typer.echo(summary.line())
        for report in summary.errors.reports:
            typer.echo(f"  {report.one_line()}")


@app.command("fetch")
def fetch_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    azure_conn_env: AzureConnEnv = None,
    force: Annotated[bool, typer.Option(help="Fetch even published images.")] = False,
    limit: Annotated[int | None, typer.Option(help="Fetch at most this many.")] = None,
) -> None:
    """Download new or changed images from the repository's source into WORKDIR/cache_todo."""
    from flows.ingest import fetch_images

    _print_summaries(
        _run_stage(
            fetch_images,
            repository=repo,
            work_dir=workdir,
            azure_conn_env=azure_conn_env,
            force=force,
            limit=limit,
        )
    )


@app.command("process")
def process_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    azure_conn_env: AzureConnEnv = None,
    png_level: Annotated[int, typer.Option(min=0, max=9, help="PNG zlib level.")] = 1,
) -> None:
    """Tile fetched images into WORKDIR/out_todo (tiles, thumbnail, WTML)."""
    from flows.ingest import process_images

    _print_summaries(
        _run_stage(
            process_images,
            repository=repo,
            work_dir=workdir,
            azure_conn_env=azure_conn_env,
            png_level=png_level,
        )
    )


@app.command("publish")
def publish_cmd(repo: Repo, workdir: WorkDirArg, azure_conn_env: AzureConnEnv = None) -> None:
    """Upload processed images to the repository, index.wtml last."""
    from flows.ingest import publish_images

    _print_summaries(
        _run_stage(publish_images, repository=repo, work_dir=workdir, azure_conn_env=azure_conn_env)
    )


@app.command("reindex")
def reindex_cmd(
    repo: Repo,
    workdir: Annotated[str | None, typer.Argument(help="Unused; accepted for symmetry.")] = None,
    azure_conn_env: AzureConnEnv = None,
) -> None:
    """Rewrite the repository's root index.wtml from the published images, newest first."""
    from flows.ingest import reindex_repository

    _print_summaries(_run_stage(reindex_repository, repository=repo, azure_conn_env=azure_conn_env))


@app.command("ingest")
def ingest_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    azure_conn_env: AzureConnEnv = None,
    force: Annotated[bool, typer.Option(help="Fetch even published images.")] = False,
    limit: Annotated[int | None, typer.Option(help="Fetch at most this many.")] = None,
) -> None:
    """fetch, process, publish and reindex in one run."""
    from flows.ingest import ingest_images

    _print_summaries(
        _run_stage(
            ingest_images,
            repository=repo,
            work_dir=workdir,
            azure_conn_env=azure_conn_env,
            force=force,
            limit=limit,
        )
    )


@app.command("ignore-rejects")
def ignore_rejects_cmd(
    repo: Repo, workdir: WorkDirArg, azure_conn_env: AzureConnEnv = None
) -> None:
    """Write skip.flag into the repository for every candidate fetch rejected."""
    from flows.ingest import ignore_rejects

    written, errors = _run_stage(
        ignore_rejects, repository=repo, work_dir=workdir, azure_conn_env=azure_conn_env
    )
    typer.echo(f"ignore-rejects: written={len(written)} failed={len(errors)}")
    for report in errors.reports:
        typer.echo(f"  {report.one_line()}")


session_app = typer.Typer(help="Manage reduction sessions of a workspace.", no_args_is_help=True)
list_app = typer.Typer(help="Show the organiser's tables.", no_args_is_help=True)
app.add_typer(session_app, name="session")
app.add_typer(list_app, name="list")
Workspace = Annotated[str, typer.Argument(help="Workspace folder.")]
SessionOpt = Annotated[str | None, typer.Option("--session", help="Session id (default: current).")]


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print an aligned plain-text table."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            typer.echo("  ".join("-" * w for w in widths))
    typer.echo(f"({len(rows)} rows)")


@app.command("prep")
def prep_cmd(
    workspace: Workspace,
    refresh: Annotated[bool, typer.Option(help="Rebuild the inventory from the files.")] = False,
    rules: Annotated[str | None, typer.Option(help="Ruleset name or YAML path.")] = None,
) -> None:
    """Organise raw frames, predict every product and write the SOF files."""
    from flows.organiser import prepare_workspace

    s = _run_stage(prepare_workspace, workspace=workspace, refresh=refresh, rules=rules)
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
    workspace: Workspace,
    session_id: Annotated[str, typer.Argument(metavar="ID")],
    rules: Annotated[str | None, typer.Option(help="Ruleset for the session.")] = None,
) -> None:
    """Create a session and make it current."""
    from flows.organiser import create_session

    name = _run_stage(create_session, workspace=workspace, name=session_id, rules=rules)
    _run_stage(_session_refresh, workspace=workspace, session_id=name)
    typer.echo(f"session {name} created (current)")


@session_app.command("list")
def session_list(workspace: Workspace) -> None:
    """List sessions; * marks the current one."""
    from flows.organiser import open_workspace
    from storage import catalog

    _, db = _run_stage(open_workspace, workspace=workspace)
    _table(
        ["", "id", "rules", "created"],
        [["*" if s.current else "", s.name, s.rules, s.created_at] for s in catalog.sessions(db)],
    )


@session_app.command("switch")
def session_switch(
    workspace: Workspace, session_id: Annotated[str, typer.Argument(metavar="ID")]
) -> None:
    """Make another session current."""
    from flows.organiser import switch_session

    _run_stage(switch_session, workspace=workspace, name=session_id)
    typer.echo(f"current session: {session_id}")


def _session_refresh(workspace: str, session_id: str | None) -> tuple[str, int]:
    from flows.organiser import open_workspace
    from models.rules import load_rules
    from storage import catalog
    from storage.keys import validate_session_id
    from storage.workspace import ensure_session_dirs
    from tasks.organiser import write_sofs_task

    ws, db = open_workspace(workspace)
    current = catalog.current_session(db)
    name = validate_session_id(session_id) if session_id else (current.name if current else "")
    row = next((s for s in catalog.sessions(db) if s.name == name), None)
    if row is None:
        from models.errors import ConfigError

        raise ConfigError(f"no session {name!r}")
    ensure_session_dirs(ws, name)
    written, _ = write_sofs_task.fn(str(ws), db.url, load_rules(row.rules), name)
    return name, written


@session_app.command("refresh")
def session_refresh(
    workspace: Workspace,
    session_id: Annotated[str | None, typer.Argument(metavar="[ID]")] = None,
) -> None:
    """Redo a session's calibration matching and SOF files from its statuses."""
    name, written = _run_stage(_session_refresh, workspace=workspace, session_id=session_id)
    typer.echo(f"session {name}: {written} SOF files written")


def _session_name(db: Any, session: str | None) -> str:
    from storage import catalog

    if session:
        return session
    current = catalog.current_session(db)
    return current.name if current else ""


@list_app.command("raw")
def list_raw(workspace: Workspace) -> None:
    """Raw frames."""
    from flows.organiser import open_workspace
    from storage import catalog

    _, db = _run_stage(open_workspace, workspace=workspace)
    rows = sorted(catalog.load_frames(db).items())
    _table(
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
def list_obs(workspace: Workspace) -> None:
    """Science observations (object frames)."""
    from flows.organiser import open_workspace
    from storage import catalog

    _, db = _run_stage(open_workspace, workspace=workspace)
    rows = sorted(catalog.load_frames(db).items(), key=lambda kv: kv[1][1].mjd_obs)
    _table(
        ["file", "object", "night", "filter", "exptime", "mjd"],
        [
            [p, i.object, i.night, i.filter, f"{i.exptime:g}", f"{i.mjd_obs:.5f}"]
            for p, (_, i) in rows
            if i.kind == "science"
        ],
    )


@list_app.command("sets")
def list_sets(workspace: Workspace) -> None:
    """Predicted recipe input sets."""
    from flows.organiser import open_workspace
    from storage import catalog

    _, db = _run_stage(open_workspace, workspace=workspace)
    sets, _ = catalog.load_plan(db)
    _table(
        ["set", "recipe", "night", "frames", "complete", "reason"],
        [
            [s.name, s.recipe, s.night, len(s.frames), "yes" if s.complete else "no", s.reason]
            for s in sets
        ],
    )


@list_app.command("products")
def list_products(workspace: Workspace, session: SessionOpt = None) -> None:
    """Predicted products with their status in a session."""
    from flows.organiser import open_workspace
    from storage import catalog

    _, db = _run_stage(open_workspace, workspace=workspace)
    name = _session_name(db, session)
    status = catalog.statuses(db, name)
    _, products = catalog.load_plan(db)
    _table(
        ["product", "recipe", "tag", "path", "status"],
        [[p.name, p.recipe, p.tag, p.filepath, status.get(p.name, "-")] for p in products],
    )


@list_app.command("sofs")
def list_sofs(workspace: Workspace, session: SessionOpt = None) -> None:
    """Set-of-files entries of a session."""
    from flows.organiser import open_workspace
    from storage import catalog

    _, db = _run_stage(open_workspace, workspace=workspace)
    rows = catalog.sof_rows(db, _session_name(db, session))
    _table(
        ["sof", "file", "tag", "complete"],
        [[r.sof, r.file, r.tag, "yes" if r.complete else "no"] for r in rows],
    )


@app.command("calibrate")
def calibrate_cmd(
    workspace: Workspace,
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
    from flows.cascade import calibration_cascade

    runner = "threads" if dask is None else ("dask-local" if dask == "local" else dask)
    s = _run_stage(
        calibration_cascade,
        workspace=workspace,
        session=session,
        overwrite=overwrite,
        recipes=recipe or None,
        task_runner=runner,
    )
    typer.echo(s.line())
    for name in s.failed:
        typer.echo(f"  failed {name}")
    for name, why in s.incomplete:
        typer.echo(f"  incomplete {name}: {why}")
    for sub in s.substitutions:
        typer.echo(f"  substituted {sub}")


@app.command("night")
def night_cmd(
    workspace: Workspace,
    repo: Repo,
    azure_conn_env: AzureConnEnv = None,
    publish_url_prefix: Annotated[
        str, typer.Option(help="URL the repository is served under (new repositories).")
    ] = "http://localhost:8000/",
) -> None:
    """Calibrate a night and publish its reduced science frames to a WWT repository."""
    from flows.night import process_night

    s = _run_stage(
        process_night,
        workspace=workspace,
        repository=repo,
        azure_conn_env=azure_conn_env,
        publish_url_prefix=publish_url_prefix,
    )
    typer.echo(s.cascade.line())
    _print_summaries(list(s.ingest))


@app.command("demo")
def demo_cmd(
    directory: Annotated[str, typer.Argument(help="Folder for the demo night.")] = "astroflow-demo",
    size: Annotated[int, typer.Option(help="Frame size in pixels.")] = 256,
) -> None:
    """Synthesise a small night, calibrate it and publish it to a local WWT repository."""
    from flows.demo import run_demo

    r = _run_stage(run_demo, directory=directory, size=size)
    typer.echo("\nProducts")
    subs = {s.split(": ", 1)[0]: s.split(": ", 1)[1] for s in r.night.cascade.substitutions}
    _table(
        ["product", "status", "note"],
        [[p, st, subs.get(p, "") or (msg if st == "fail" else "")] for p, st, msg in r.products]
        + [[n, "incomplete", why] for n, why in r.night.cascade.incomplete],
    )
    typer.echo("\nQC (inclusive acceptable ranges; ! = outside)")
    _table(
        ["product", "qc", "value", ""],
        [[p, q, "nan" if v is None else f"{v:.4g}", "!" if flag else ""] for p, q, v, flag in r.qc],
    )
    typer.echo(f"\nPublished images ({len(r.published)}): {', '.join(r.published) or '-'}")
    typer.echo(f"Root index: {r.root_index}")
    if r.preview:
        typer.echo(f"Preview of a reduced frame: {r.preview}")


@app.command("serve")
def serve_cmd(
    limit: Annotated[int | None, typer.Option(help="Most concurrent runs.")] = None,
) -> None:
    """Serve every deployment of deployments/prefect.yaml from this process (no work pool)."""
    from flows.serve import serve_all

    serve_all(limit=limit)


data_app = typer.Typer(help="The remote data cache.", no_args_is_help=True)
app.add_typer(data_app, name="data")
CacheDir = Annotated[
    str | None,
    typer.Option(
        "--cache-dir", help="Cache folder (default: ASTROFLOW_CACHE_DIR or ~/.cache/astroflow)."
    ),
]


def _remote(cache_dir: str | None) -> Any:
    from storage.remote import RemoteData, default_remote

    if cache_dir:
        from models.settings import Settings

        return RemoteData(cache_dir, Settings().remote_database_url)
    return default_remote()


@data_app.command("list")
def data_list(cache_dir: CacheDir = None) -> None:
    """Cached files, every version (* = default)."""
    remote = _remote(cache_dir)
    _table(
        ["", "name", "version", "size", "hash", "path"],
        [
            ["*" if v.is_default else "", v.name, v.version, v.size, v.hash[:23] + "...", v.path]
            for v in remote.versions()
        ],
    )


@data_app.command("verify")
def data_verify(cache_dir: CacheDir = None) -> None:
    """Re-hash every cached file; exit 1 if any is missing or corrupt."""
    results = _remote(cache_dir).verify()
    _table(
        ["name", "version", "ok", "problem"],
        [[r.name, r.version, "yes" if ok else "NO", problem] for r, ok, problem in results],
    )
    if not all(ok for _, ok, _ in results):
        raise typer.Exit(1)


@data_app.command("clear")
def data_clear(
    name: Annotated[str | None, typer.Argument(help="Only this file.")] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Delete cached files and their records."""
    removed = _remote(cache_dir).clear(name)
    typer.echo(f"removed {removed} cached file version(s)")


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _setup_logging(verbose=bool(os.environ.get("ASTROFLOW_VERBOSE")))
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
