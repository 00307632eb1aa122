"""The ``astroflow`` command line.

Each command runs a flow (or a storage check) and prints a short summary. The exit code is
non-zero only when the run itself could not proceed, not when one input failed.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

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


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _setup_logging(verbose=bool(os.environ.get("ASTROFLOW_VERBOSE")))
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
