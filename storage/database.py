"""The organiser's database: engine, alembic migrations, short-lived sessions.

SQLite by default (``<workspace>/astroflow.db``, WAL journal, 30 s busy timeout);
``ASTROFLOW_DATABASE_URL`` selects another database (PostgreSQL for several workers). The
variable is read when a database is opened, never at import.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from astroflow.models.errors import ConfigError
from astroflow.models.settings import Settings

log = logging.getLogger(__name__)

DATABASE_ENV = "ASTROFLOW_DATABASE_URL"
MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 30_000


def database_url(workspace: str | Path) -> str:
    """``ASTROFLOW_DATABASE_URL`` when set, else the workspace's SQLite file."""
    url = (Settings().database_url or "").strip()
    if url:
        return url
    return f"sqlite:///{Path(workspace).resolve() / 'astroflow.db'}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


_ENGINES: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine per URL per process (engines pool connections; sessions stay short)."""
    engine = _ENGINES.get(url)
    if engine is None:
        try:
            if url.startswith("sqlite"):
                engine = sa.create_engine(
                    url,
                    connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                )
                sa.event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = sa.create_engine(url, pool_pre_ping=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise ConfigError(f"cannot open database URL from {DATABASE_ENV}: {exc}") from None
        _ENGINES[url] = engine
    return engine


_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the latest alembic revision (once per process)."""
    key = engine.url.render_as_string(hide_password=False)
    if key in _MIGRATED:
        return
    from alembic import command
    from alembic.config import Config
    from filelock import FileLock

    # alembic's context is process-global, and two processes must not create the same
    # tables at once: one thread per process, one process per SQLite file.
    with _MIGRATE_LOCK:
        if key in _MIGRATED:
            return
        database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
        file_lock = (
            FileLock(f"{database}.migrate.lock", timeout=120)
            if database and database != ":memory:"
            else contextlib.nullcontext()
        )
        with file_lock:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            with engine.begin() as conn:
                if engine.url.get_backend_name() == "postgresql":
                    # one migrating process at a time per database
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(421337)"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        _MIGRATED.add(key)


def forget_migration(url: str) -> None:
    """Make the next :class:`Database` for ``url`` migrate again (its file was deleted)."""
    engine = _ENGINES.pop(url, None)
    if engine is not None:
        _MIGRATED.discard(engine.url.render_as_string(hide_password=False))
        engine.dispose()


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory ones)."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return None
    return Path(url.removeprefix("sqlite:///"))


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _read_only_engine(path: Path) -> Engine:
    """An engine on a SQLite file that cannot be written (a read-only folder or mount):
    ``immutable`` lets SQLite read a WAL database without creating its ``-shm`` file.

    Raises
    ------
    ConfigError
        When the file does not exist or holds an older schema (it would need migrating).
    """
    if not path.exists():
        raise ConfigError(
            f"{path.parent} is read-only and holds no database {path.name}: run the command "
            "that creates it (`astroflow prep`) where the folder is writable"
        )
    # mode=ro reads the WAL through an existing -shm file; without one (a checkpointed
    # database), immutable=1 reads the main file alone.
    problem: Exception | None = None
    for flags in ("mode=ro", "mode=ro&immutable=1"):
        url = f"sqlite:///file:{path}?{flags}&uri=true"
        engine = _ENGINES.get(url) or sa.create_engine(
            url, connect_args={"check_same_thread": False}
        )
        try:
            with engine.connect() as conn:
                version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.DatabaseError as exc:
            problem = exc.orig
            engine.dispose()
            continue
        _ENGINES[url] = engine
        break
    else:
        raise ConfigError(f"{path}: not a readable astroflow database ({problem})")
    if version != _head_revision():
        raise ConfigError(
            f"{path} holds schema {version}, this astroflow needs {_head_revision()}, and the "
            "folder is read-only: upgrade it where it is writable"
        )
    return engine


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (false on a read-only mount, too)."""
    return os.access(folder, os.W_OK)


class Database:
    """A migrated database for one workspace (or a cache of the remote data manager).

    A SQLite file in a folder that cannot be written (a read-only mount) is opened read-only
    instead of migrated: listings work, writes fail with the database's own error.

    Attributes
    ----------
    read_only
        Whether the database was opened read-only.
    """

    def __init__(self, workspace: str | Path, url: str | None = None) -> None:
        self.url = url or database_url(workspace)
        path = sqlite_path(self.url)
        self.read_only = path is not None and not writable(path.parent)
        if self.read_only:
            assert path is not None
            self.engine = _read_only_engine(path)
            return
        self.engine = engine_for(self.url)
        migrate(self.engine)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A short-lived session, committed on success, rolled back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextlib.contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A Core connection in a transaction (bulk inserts)."""
        with self.engine.begin() as conn:
            yield conn
