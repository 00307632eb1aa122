"""Commands that run a whole night: night, demo."""

from __future__ import annotations

from typing import Annotated

import typer

from astroflow.flows.cli.common import (
    AzureBlock,
    AzureConnEnv,
    Repo,
    WorkspaceArg,
    app,
    print_summaries,
    run_stage,
    table,
)


@app.command("night")
def night_cmd(
    workspace: WorkspaceArg,
    repo: Repo,
    azure_conn_env: AzureConnEnv = None,
    azure_block: AzureBlock = None,
    publish_url_prefix: Annotated[
        str, typer.Option(help="URL the repository is served under (new repositories).")
    ] = "http://localhost:8000/",
) -> None:
    """Calibrate a night and publish its reduced science frames to a WWT repository."""
    from astroflow.flows.night import process_night

    s = run_stage(
        process_night,
        workspace=workspace,
        repository=repo,
        azure_conn_env=azure_conn_env,
        azure_block=azure_block,
        publish_url_prefix=publish_url_prefix,
    )
    typer.echo(s.cascade.line())
    print_summaries(list(s.ingest))


@app.command("demo")
def demo_cmd(
    directory: Annotated[str, typer.Argument(help="Folder for the demo night.")] = "astroflow-demo",
    size: Annotated[int, typer.Option(help="Frame size in pixels.")] = 256,
) -> None:
    """Synthesise a small night, calibrate it and publish it to a local WWT repository."""
    from astroflow.flows.demo import run_demo

    r = run_stage(run_demo, directory=directory, size=size)
    typer.echo("\nProducts")
    subs = {s.split(": ", 1)[0]: s.split(": ", 1)[1] for s in r.night.cascade.substitutions}
    table(
        ["product", "status", "note"],
        [[p, st, subs.get(p, "") or (msg if st == "fail" else "")] for p, st, msg in r.products]
        + [[n, "incomplete", why] for n, why in r.night.cascade.incomplete],
    )
    typer.echo("\nQC (inclusive acceptable ranges; ! = outside)")
    table(
        ["product", "qc", "value", ""],
        [[p, q, "nan" if v is None else f"{v:.4g}", "!" if flag else ""] for p, q, v, flag in r.qc],
    )
    typer.echo(f"\nPublished images ({len(r.published)}): {', '.join(r.published) or '-'}")
    typer.echo(f"Root index: {r.root_index}")
    if r.preview:
        typer.echo(f"Preview of a reduced frame: {r.preview}")
