"""Commands of the remote data cache: data list, verify, clear."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from astroflow.flows.cli.common import app, table

data_app = typer.Typer(help="The remote data cache.", no_args_is_help=True)
app.add_typer(data_app, name="data")
CacheDir = Annotated[
    str | None,
    typer.Option(
        "--cache-dir", help="Cache folder (default: ASTROFLOW_CACHE_DIR or ~/.cache/astroflow)."
    ),
]


def _remote(cache_dir: str | None) -> Any:
    from astroflow.storage.remote import RemoteData, default_remote

    if cache_dir:
        from astroflow.models.settings import Settings

        return RemoteData(cache_dir, Settings().remote_database_url)
    return default_remote()


@data_app.command("list")
def data_list(cache_dir: CacheDir = None) -> None:
    """Cached files, every version (* = default)."""
    remote = _remote(cache_dir)
    table(
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
    table(
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
