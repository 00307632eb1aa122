"""astroflow values: frozen pydantic models, settings, rules and SQLModel tables.

Imports nothing from the other astroflow packages.
"""

from models.errors import (
    AstroflowError,
    ErrorReport,
    ErrorStack,
    NoncriticalProcessingError,
    ProcessingError,
)

__all__ = [
    "AstroflowError",
    "ErrorReport",
    "ErrorStack",
    "NoncriticalProcessingError",
    "ProcessingError",
]
