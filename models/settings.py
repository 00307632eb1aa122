"""Settings read from the environment when asked for, never at import.

This module is the only place in astroflow that reads (or sets) environment variables:
``ASTROFLOW_*`` settings through :class:`Settings`, the variable an operator names for a
connection string (``azure_conn_env``) through :func:`environment_variable`, a backend's own
credential variables (for its use and redaction) through :func:`environment_values`, and Prefect's
defaults for the command line through :func:`apply_prefect_defaults`.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
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
    cache
        Keep pre-processed frames of the cascade in ``.npy`` memory maps (``ASTROFLOW_CACHE``,
        default true); false keeps them in memory.
    verbose
        Debug logging on the command line (``ASTROFLOW_VERBOSE``).
    http_connect_timeout, http_read_timeout
        Seconds to wait for an HTTP server to accept a connection, and for each read of its
        answer (feeds and downloads; ``ASTROFLOW_HTTP_CONNECT_TIMEOUT``,
        ``ASTROFLOW_HTTP_READ_TIMEOUT``).
    http_attempts
        Tries of a feed query or a download from one mirror on connection faults, timeouts and
        5xx answers (``ASTROFLOW_HTTP_ATTEMPTS``).
    azure_connect_timeout, azure_read_timeout
        Seconds to wait for Azure Blob storage to accept a connection, and for each read
        (``ASTROFLOW_AZURE_CONNECT_TIMEOUT``, ``ASTROFLOW_AZURE_READ_TIMEOUT``).
    autostart_server
        Let a command that runs a flow start a local Prefect server in the background when
        no Prefect API is configured or running (``ASTROFLOW_AUTOSTART_SERVER``, default true;
        false: Prefect's temporary server for each command).
    azure_blob_endpoint
        Blob endpoint of the Azure account routes (account key, SAS, service principal,
        DefaultAzureCredential) when it is not ``https://<account>.blob.core.windows.net``
        (``ASTROFLOW_AZURE_BLOB_ENDPOINT``; ``{account}`` is replaced by the account: Azurite's
        ``http://127.0.0.1:10000/{account}``, another cloud, a private endpoint).
    azure_sdk_retries
        Retries of the Azure SDK itself per request (``ASTROFLOW_AZURE_SDK_RETRIES``, default
        0: the repository's own retries, with its circuit breaker, do the retrying).
    site_longitude
        Degrees east of the observatory (``ASTROFLOW_SITE_LONGITUDE``): where a night starts
        at local noon when neither the rules nor a frame's header say (default: none, the
        date of MJD - 15 h).
    combine_budget_mb
        Memory (MB) a master's combination may use for its stack of frames
        (``ASTROFLOW_COMBINE_BUDGET_MB``, default 256): frames are combined a band of rows at
        a time within it.
    astrometry_index_dir
        Folders of astrometry.net index files, separated by ``:``
        (``ASTROFLOW_ASTROMETRY_INDEX_DIR``; default ``/usr/share/astrometry``, where Debian's
        ``astrometry-data-*`` packages put them; empty: none). The ``solve`` step of
        ``reduce`` is on by default when they hold index files and ``solve-field`` is
        installed.
    lock_wait_s
        Seconds a run waits for another live run holding its work folder or workspace before
        it gives up (``ASTROFLOW_LOCK_WAIT_S``, default 0: it gives up at once, naming the
        holder).
    """

    model_config = SettingsConfigDict(env_prefix="ASTROFLOW_", frozen=True)

    cache_dir: Path = Path("~/.cache/astroflow").expanduser()
    remote_database_url: str | None = None
    database_url: str | None = None
    cache: bool = True
    verbose: bool = False
    http_connect_timeout: float = Field(default=10.0, gt=0)
    http_read_timeout: float = Field(default=30.0, gt=0)
    http_attempts: int = Field(default=3, ge=1)
    azure_connect_timeout: float = Field(default=5.0, gt=0)
    azure_read_timeout: float = Field(default=20.0, gt=0)
    azure_sdk_retries: int = Field(default=0, ge=0)
    azure_blob_endpoint: str | None = None
    autostart_server: bool = True
    site_longitude: float | None = Field(default=None, ge=-180, le=360)
    lock_wait_s: float = Field(default=0.0, ge=0)
    combine_budget_mb: int = Field(default=256, ge=8)
    astrometry_index_dir: str = "/usr/share/astrometry"


def environment_variable(name: str) -> str | None:
    """The value of the environment variable ``name`` (an operator's ``azure_conn_env``), or
    None when it is unset."""
    return os.environ.get(name)


def environment_values(names: tuple[str, ...]) -> dict[str, str]:
    """The variables among ``names`` that are set and not empty (name -> value): a backend's
    own credential variables, for its use and for redaction."""
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def prefect_api_configured() -> bool:
    """Whether the user configured a Prefect API, in any of the places Prefect reads its
    settings from (without importing Prefect): ``PREFECT_API_URL`` in the environment, a
    ``.env`` file, a ``prefect.toml`` (``[api] url``) or a ``pyproject.toml``
    (``[tool.prefect.api] url``) in the working folder, or the active profile of Prefect's
    ``profiles.toml``."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    return any(
        source()
        for source in (_dotenv_api_url, _prefect_toml_api_url, _pyproject_api_url, _profile_api_url)
    )


def _toml(path: Path) -> dict:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _dotenv_api_url() -> str:
    try:
        lines = Path(".env").read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == "PREFECT_API_URL":
            return value.strip().strip("'\"")
    return ""


def _prefect_toml_api_url() -> str:
    data = _toml(Path("prefect.toml"))
    return str((data.get("api") or {}).get("url") or data.get("api.url") or "")


def _pyproject_api_url() -> str:
    data = _toml(Path("pyproject.toml"))
    return str(((data.get("tool") or {}).get("prefect") or {}).get("api", {}).get("url") or "")


def _profile_api_url() -> str:
    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", str(home / "profiles.toml"))).expanduser()
    data = _toml(path)
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    return str(data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL") or "")


def use_prefect_api(url: str) -> None:
    """Make this process (and Prefect, imported after) use the API at ``url``."""
    os.environ["PREFECT_API_URL"] = url


def child_environment(**updates: str) -> dict[str, str]:
    """This process's environment with ``updates``, for a child process (a Prefect server)."""
    return {**os.environ, **updates}


def apply_prefect_defaults() -> None:
    """Prefect settings of the command line, where the user has not set them: no analytics,
    and a startup timeout for Prefect's temporary server that a busy machine meets (180 s
    instead of 20 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
