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

The server is Prefect's own (``prefect server start``, with its UI), on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
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
    """The server astroflow started: its API URL, process id and log file."""

    url: str
    pid: int
    log: str

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
        return ServerRecord(url=data["url"], pid=int(data["pid"]), log=data["log"])
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


def start(timeout: float = STARTUP_TIMEOUT_S) -> ServerRecord:
    """Start a Prefect server in the background (its own session: it outlives this command),
    wait until it answers, record it.

    Raises
    ------
    ConfigError
        When it does not answer within ``timeout`` seconds (its log's tail in the message).
    """
    record = read_record()
    if record is not None and healthy(record.url):
        return record
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log_path = folder / "server.log"
    env = child_environment(
        PREFECT_API_URL=url, PREFECT_UI_API_URL=url, PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("prefect")),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    record = ServerRecord(url=url, pid=proc.pid, log=str(log_path))
    deadline = time.monotonic() + timeout
    while not healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
            raise ConfigError(f"the Prefect server did not start on {url}: {tail}")
        time.sleep(0.5)
    _record_path().write_text(
        json.dumps({"url": record.url, "pid": record.pid, "log": record.log}), encoding="utf-8"
    )
    return record


def stop() -> ServerRecord | None:
    """Stop the server astroflow started (None when there is none)."""
    record = read_record()
    if record is None:
        return None
    try:
        os.killpg(record.pid, signal.SIGTERM)
        for _ in range(100):
            os.killpg(record.pid, 0)
            time.sleep(0.1)
        os.killpg(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
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
