"""The ``astroflow`` command line: parse, call a flow or a storage query, print.

Each command runs a flow (or a storage query) and prints a short summary. The exit code is
non-zero only when the run itself could not proceed, not when one input failed. Commands live
by area: :mod:`.ingest` (and repositories), :mod:`.organiser` (and the cascade), :mod:`.night`,
:mod:`.data`, :mod:`.server`.
"""

from __future__ import annotations

from astroflow.flows.cli import data, ingest, night, organiser, server
from astroflow.flows.cli.common import app, setup_logging

__all__ = ["app", "main"]
_COMMANDS = (data, ingest, night, organiser, server)  # imported for their registrations


def main() -> None:
    """Console-script entry point."""
    from astroflow.flows.server import use_running_server
    from astroflow.models.settings import Settings, apply_prefect_defaults

    apply_prefect_defaults()
    use_running_server()  # before any Prefect import
    setup_logging(verbose=Settings().verbose)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
