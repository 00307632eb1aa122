"""A local Prefect server that astroflow keeps for its user (``astroflow server ...``).

Without a Prefect API, every command that runs a flow would start Prefect's temporary server
(8-15 s here, and a failure on a busy machine). Instead the command line looks for an API in
this order, and uses the first it finds:

1. the one the user configured, wherever Prefect reads it from (``PREFECT_API_URL`` in the
   environment or a ``.env``, ``[api] url`` in a ``prefect.toml``, ``[tool.prefect.api] url``
   in a ``pyproject.toml`` of the working folder, or the active profile);
2. the server astroflow started before (``<cache>/prefect-server/server.json``), if it answers;
3. a Prefect server on the default address (``http://127.0.0.1:4200/api``), if one answers;
4. a new server that astroflow starts in the background (``ASTROFLOW_AUTOSTART_SERVER``,
   default true) and records for the next commands; ``astroflow server stop`` ends it.

The server is Prefect's own, managed with Prefect's own commands: ``prefect server start
--background`` (on 127.0.0.1 only, with its UI; Prefect keeps its process id in
``$PREFECT_HOME/server.pid``), ``prefect server status --wait`` and ``prefect server stop``,
so that ``prefect server stop`` ends it too.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from astroflow.models.errors import ConfigError
from astroflow.models.settings import (
    Settings,
    child_environment,
    prefect_api_configured,
    use_prefect_api,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:4200/api"
STARTUP_TIMEOUT_S = 180.0  # a busy 2-core machine needs far more than Prefect's 20 s


@dataclass(frozen=True)
class ServerRecord:
    """The server astroflow started: its API URL."""

    url: str

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")


def state_dir() -> Path:
    return Settings().cache_dir / "prefect-server"


def _record_path() -> Path:
    return state_dir() / "server.json"


def read_record() -> ServerRecord | None:
    try:
        data = json.loads(_record_path().read_text(encoding="utf-8"))
        return ServerRecord(url=data["url"])
    except (OSError, ValueError, KeyError):
        return None


def healthy(url: str, timeout: float = 1.0) -> bool:
    """Whether a Prefect API answers its health check at ``url``."""
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port(preferred: int = 4200) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise ConfigError("no free TCP port on 127.0.0.1 for a Prefect server")


def _prefect(args: list[str], url: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``prefect ARGS`` for the server at ``url`` (its output captured)."""
    env = child_environment(
        PREFECT_API_URL=url, PREFECT_UI_API_URL=url, PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    return subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(timeout: float = STARTUP_TIMEOUT_S) -> ServerRecord:
    """Start a Prefect server in the background (``prefect server start --background``: it
    outlives this command), wait until it answers (``prefect server status --wait``), record it.

    Raises
    ------
    ConfigError
        When Prefect refuses to start it (another background server of this ``PREFECT_HOME``
        runs) or it does not answer within ``timeout`` seconds (Prefect's words in the message).
    """
    record = read_record()
    if record is not None and healthy(record.url):
        return record
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    started = _prefect(
        ["server", "start", "--background", "--host", "127.0.0.1", "--port", str(port)],
        url,
        timeout,
    )
    if started.returncode != 0:
        said = " ".join((started.stdout + started.stderr).split())[-1500:]
        raise ConfigError(f"prefect server start --background failed: {said}")
    wait = ["server", "status", "--wait", "--timeout", str(int(timeout))]
    waited = _prefect(wait, url, timeout + 30)
    if waited.returncode != 0 or not healthy(url):
        _prefect(["server", "stop"], url, 60)
        said = " ".join((waited.stdout + waited.stderr).split())[-1500:]
        raise ConfigError(f"the Prefect server did not start on {url}: {said}")
    state_dir().mkdir(parents=True, exist_ok=True)
    _record_path().write_text(json.dumps({"url": url}), encoding="utf-8")
    return ServerRecord(url=url)


def stop() -> ServerRecord | None:
    """Stop the server astroflow started (``prefect server stop``); None when there is none."""
    record = read_record()
    if record is None:
        return None
    _prefect(["server", "stop"], record.url, 120)
    _record_path().unlink(missing_ok=True)
    return record


def running_api() -> str | None:
    """The server astroflow recorded, or one on the default address, if it answers."""
    record = read_record()
    for url in ([record.url] if record else []) + [DEFAULT_URL]:
        if healthy(url, timeout=0.5):
            return url
    return None


def use_running_server() -> None:
    """Before Prefect is imported: point this process at a running server when the user
    configured no API (so that every part of Prefect uses it from the start)."""
    if prefect_api_configured():
        return
    url = running_api()
    if url is not None:
        use_prefect_api(url)


def found_api() -> str | None:
    """The Prefect API to use when the user configured none (see the module's order), or
    None when one is configured (Prefect then uses it) or none should be started (Prefect's
    temporary server, with a generous startup timeout)."""
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return None
    url = running_api()
    if url is not None:
        return url
    if not Settings().autostart_server:
        return None
    record = start()
    log.info("started a Prefect server for astroflow: %s (`astroflow server stop`)", record.ui)
    return record.url
