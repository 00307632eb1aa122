"""Shared fixtures: real services started by the tests (Azurite, PostgreSQL, a Prefect API)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lossy_api import LossyApi

ROOT = Path(__file__).resolve().parents[1]

# Prefect settings must be in the environment before prefect is imported anywhere.
_PREFECT_HOME = tempfile.mkdtemp(prefix="astroflow-test-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
os.environ.setdefault("DASK_TEMPORARY_DIRECTORY", tempfile.mkdtemp(prefix="astroflow-dask-"))
os.environ.pop("ASTROFLOW_DATABASE_URL", None)

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURE_ENV = "ASTROFLOW_TEST_AZURE_CONN"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


# -- Azurite --------------------------------------------------------------------------------


class Azurite:
    """An Azurite blob service of our own on 127.0.0.1 (a real process that can be killed)."""

    def __init__(self, port: int | None = None) -> None:
        self.exe = ROOT / "node_modules" / ".bin" / "azurite-blob"
        if not self.exe.exists():
            pytest.fail(
                f"{self.exe} is missing: install the test services with `npm ci` (README's test "
                "command)"
            )
        self.port = port or free_port()
        self.workdir = tempfile.mkdtemp(prefix="azurite-")
        self._spawn()
        self.conn = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};"
        )

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            [
                str(self.exe),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.proc.kill()
            raise RuntimeError(
                f"Azurite did not start: {self.proc.stderr.read().decode()[-2000:]}"
            ) from None

    def start_again(self) -> None:
        """A new (empty) Azurite on the same port, after :meth:`kill`."""
        if self.proc.poll() is None:
            self.kill()
        self._spawn()

    def kill(self) -> None:
        """kill -9: the endpoint stops answering at once (connections refused)."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Start Azurite's blob service once per test session; yields its connection string."""
    service = Azurite()
    yield service.conn
    service.stop()


@pytest.fixture
def own_azurite() -> Iterator[Azurite]:
    """An Azurite for one test, which the test may kill."""
    service = Azurite()
    yield service
    service.stop()


@pytest.fixture
def azure_container(azurite: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty container; the connection string is in the env var named AZURE_ENV.

    Yields the container name; the container is deleted afterwards.
    """
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv(AZURE_ENV, azurite)
    name = f"t{uuid.uuid4().hex[:20]}"
    client = BlobServiceClient.from_connection_string(azurite)
    client.create_container(name)
    yield name
    with contextlib.suppress(Exception):
        client.delete_container(name)
    client.close()


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``disk(megabytes)``: a folder on a tmpfs of that size (a real file system that fills)."""
    mounts: list[Path] = []

    def disk(megabytes: int) -> Path:
        folder = tmp_path / f"small-disk-{len(mounts)}"
        folder.mkdir()
        _mount(["-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs"], folder, "a small tmpfs")
        mounts.append(folder)
        return folder

    yield disk
    _unmount(mounts)


def _mount(args: list[str], target: Path, what: str) -> None:
    done = subprocess.run(
        ["mount", *args, str(target)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount {what} (needs root): {done.stderr}")


def _unmount(mounts: list[Path]) -> None:
    for target in reversed(mounts):
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def fill_leaving(folder: Path, free_bytes: int) -> None:
    """Fill ``folder``'s file system until only ``free_bytes`` are free."""
    free = shutil.disk_usage(folder).free
    (folder / "filler").write_bytes(b"\0" * max(0, free - free_bytes))


# -- the wheel ------------------------------------------------------------------------------


def build_wheel(workdir: Path) -> Path:
    """Build astroflow's wheel from a copy of the project's files (so that no ``build/`` of
    the checkout leaks stale modules into it); returns the wheel's path."""
    src = workdir / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in ("models", "processing", "storage", "tasks", "flows", "deployments"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = workdir / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("astroflow-*.whl")
    return wheel


# -- read-only folders ------------------------------------------------------------------------


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """``view(folder)``: the same folder seen through a read-only bind mount (a real
    read-only file system: the tests run as root, which ignores permission bits)."""
    mounts: list[Path] = []

    def view(folder: Path) -> Path:
        target = tmp_path / f"read-only-{len(mounts)}"
        target.mkdir()
        _mount(["--bind", str(folder)], target, "a bind mount")
        mounts.append(target)
        _mount(["-o", "remount,bind,ro"], target, "a read-only bind mount")
        return target

    yield view
    _unmount(mounts)


# -- Prefect --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[LossyApi]:
    """A real Prefect API (temporary SQLite database) for the whole test session, reached
    through a :class:`tests.lossy_api.LossyApi` that forwards faithfully until a test arms it
    (``with prefect_harness.losing(): ...``) to lose answers as a busy machine does."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        proxy = LossyApi(str(PREFECT_API_URL.value())).start()
        with temporary_settings(updates={PREFECT_API_URL: proxy.url}):
            yield proxy
    proxy.close()  # after the harness has drained Prefect's workers, which use its address


# -- synthetic data helpers -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_astrometry_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames are solved only where a test says so: no astrometry.net index folder by default
    (a machine with Debian's astrometry-data packages would otherwise solve every reduced
    frame of every test)."""
    monkeypatch.setenv("ASTROFLOW_ASTROMETRY_INDEX_DIR", "")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(20261122)


# -- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    import glob

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (trust auth); yields its base URL.

    `.ci/run` installs the server from Debian's packages. As root, the cluster runs as the
    ``postgres`` user (PostgreSQL refuses to run as root).
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) are missing: "
            "apt-get install postgresql (as .ci/run does)"
        )
    root = Path(tempfile.mkdtemp(prefix="astroflow-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [
            *prefix,
            initdb,
            "-D",
            str(data),
            "-U",
            "astroflow",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    log = root / "pg.log"
    if prefix:
        log.touch()
        shutil.chown(log, "postgres")
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {sock} -h 127.0.0.1 -c fsync=off -c max_connections=200",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://astroflow@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    import sqlalchemy as sa

    name = f"t{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"{postgres_server}/{name}"
    from astroflow.storage.database import forget_migration

    forget_migration(f"{postgres_server}/{name}")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on the default SQLite database and on PostgreSQL (ASTROFLOW_DATABASE_URL)."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("ASTROFLOW_DATABASE_URL", url)
        return url
    monkeypatch.delenv("ASTROFLOW_DATABASE_URL", raising=False)
    return "sqlite"
