"""Commands of the Prefect side: serve."""

from __future__ import annotations

from typing import Annotated

import typer

from astroflow.flows.cli.common import app


@app.command("serve")
def serve_cmd(
    limit: Annotated[int | None, typer.Option(help="Most concurrent runs.")] = None,
) -> None:
    """Serve every deployment of deployments/prefect.yaml from this process (no work pool)."""
    from astroflow.flows.serve import serve_all

    serve_all(limit=limit)
