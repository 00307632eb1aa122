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
    for noisy in ("azure", "urllib3", "httpx", "httpcore", "fsspec", "asyncio"):
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


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _setup_logging(verbose=bool(os.environ.get("ASTROFLOW_VERBOSE")))
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
