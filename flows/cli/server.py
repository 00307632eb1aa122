"""Commands of the Prefect side: serve, and the local Prefect server astroflow keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astroflow.flows.cli.common import app, run_stage


@app.command("serve")
def serve_cmd(
    limit: Annotated[int | None, typer.Option(help="Most concurrent runs.")] = None,
    prefect_file: Annotated[
        Path | None,
        typer.Option(
            "--prefect-file",
            help="A deployments file of your own (default: the one shipped with astroflow).",
        ),
    ] = None,
) -> None:
    """Serve every deployment of deployments/prefect.yaml from this process (no work pool)."""
    from astroflow.flows.serve import serve_all

    serve_all(limit=limit, path=prefect_file)


server_app = typer.Typer(
    help="The local Prefect server (with its UI) that astroflow's commands use.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start() -> None:
    """Start a Prefect server on 127.0.0.1 in the background; later commands use it."""
    from astroflow.flows import server

    record = run_stage(server.start)
    typer.echo(f"Prefect server: {record.ui} (API {record.url}); stop: astroflow server stop")


@server_app.command("status")
def server_status() -> None:
    """The server astroflow uses; exit 1 when none answers."""
    from astroflow.flows import server

    record = server.read_record()
    if record is not None and server.healthy(record.url):
        typer.echo(f"running: {record.ui} (API {record.url})")
        return
    if server.healthy(server.DEFAULT_URL):
        typer.echo(f"running (not started by astroflow): {server.DEFAULT_URL}")
        return
    typer.echo("no Prefect server running (the next command that runs a flow starts one)")
    raise typer.Exit(1)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server astroflow started."""
    from astroflow.flows import server

    record = server.stop()
    typer.echo(f"stopped {record.ui}" if record else "no server started by astroflow")
