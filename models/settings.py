"""Settings read from the environment (``ASTROFLOW_*``) when asked for, never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """astroflow's settings.

    Attributes
    ----------
    cache_dir
        Remote data cache (``ASTROFLOW_CACHE_DIR``).
    remote_database_url
        Database of the remote data cache (``ASTROFLOW_REMOTE_DATABASE_URL``); default: SQLite
        in the cache folder.
    database_url
        Organiser database (``ASTROFLOW_DATABASE_URL``); default: SQLite in the workspace.
    """

    model_config = SettingsConfigDict(env_prefix="ASTROFLOW_", frozen=True)

    cache_dir: Path = Path("~/.cache/astroflow").expanduser()
    remote_database_url: str | None = None
    database_url: str | None = None
