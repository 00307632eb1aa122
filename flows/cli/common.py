"""What every command shares: the Typer app, argument types, logging, tables, failing."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
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

AzureConnEnv = Annotated[
    str | None,
    typer.Option(
        "--azure-conn-env",
        help="Name of the environment variable holding the Azure connection string "
        "(the string itself is never accepted on the command line).",
    ),
]
AzureBlock = Annotated[
    str | None,
    typer.Option(
        "--azure-block",
        help="Name of a Prefect block (Azure Blob Storage Credentials) holding the Azure "
        "connection string or account URL, instead of --azure-conn-env.",
    ),
]
Repo = Annotated[str, typer.Argument(help="Repository URL or local path.")]
WorkDirArg = Annotated[str, typer.Argument(help="Local work directory.")]
WorkspaceArg = Annotated[str, typer.Argument(help="Workspace folder.")]
SessionOpt = Annotated[str | None, typer.Option("--session", help="Session id (default: current).")]
DaskOpt = Annotated[
    str | None,
    typer.Option(
        "--dask",
        metavar="ADDRESS|local",
        help="Run on Dask: 'local' (a LocalCluster) or tcp://host:port.",
    ),
]


def task_runner(dask: str | None) -> str:
    """The flows' ``task_runner`` value for a ``--dask`` option (none: threads)."""
    return "threads" if dask is None else ("dask-local" if dask == "local" else dask)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("azure", "urllib3", "httpx", "httpcore", "fsspec", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` in red on stderr; the exit to raise (code 2: could not run)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def run_stage(fn: Any, **kwargs: Any) -> Any:
    """Run a flow (or a storage query); exit 2 with a clear message when the run itself
    cannot proceed. A flow runs on the Prefect API the user configured, else on a running
    local server (started in the background when there is none: :mod:`astroflow.flows.server`)."""
    from astroflow.models.errors import AstroflowError

    try:
        with _prefect_api(fn):
            return fn(**kwargs)
    except AstroflowError as exc:
        raise fail(str(exc)) from None


@contextlib.contextmanager
def _prefect_api(fn: Any) -> Iterator[None]:
    from prefect import Flow

    if not isinstance(fn, Flow):
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from astroflow.flows.server import found_api

    url = found_api()
    if url is None:
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


def print_summaries(summaries: Any) -> None:
    items = summaries if isinstance(summaries, list) else [summaries]
    for summary in items:
        typer.echo(summary.line())
        for report in summary.errors.reports:
            typer.echo(f"  {report.one_line()}")


def table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print an aligned plain-text table."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            typer.echo("  ".join("-" * w for w in widths))
    typer.echo(f"({len(rows)} rows)")
