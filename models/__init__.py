"""astroflow values: frozen pydantic models, settings, rules and SQLModel tables.

Imports nothing from the other astroflow packages.
"""

from astroflow.models.errors import (
    AstroflowError,
    ErrorReport,
    ErrorStack,
    NoncriticalProcessingError,
    ProcessingError,
)


def astroflow_version() -> str:
    """The installed astroflow version (``dev`` when running from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("astroflow")
    except PackageNotFoundError:  # pragma: no cover - not installed
        return "dev"


__all__ = [
    "AstroflowError",
    "ErrorReport",
    "ErrorStack",
    "NoncriticalProcessingError",
    "ProcessingError",
    "astroflow_version",
]
