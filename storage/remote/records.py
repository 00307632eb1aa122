"""The remote data manager's records: which versions of which files are cached, from where.

One row per cached version (``remote_files``) and one per URL it came from (``remote_urls``).
Records are written with SQLAlchemy Core statements built once, and threads of one process
commit their records together (group commit): per-download database work was what bounded
parallel fetching on a small machine.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from astroflow.models.tables import RemoteFile, RemoteUrl
from astroflow.storage.database import Database, forget_migration
from astroflow.storage.files import file_digest
from astroflow.storage.retry import RetryPolicy

FILES = RemoteFile.__table__
URLS = RemoteUrl.__table__
# Statements of every download, built once (building SQLAlchemy statements costs more than
# running them on SQLite).
_NAME_ROWS = sa.select(FILES.c["_id"], FILES.c["default"], FILES.c.hash, FILES.c.version).where(
    FILES.c.name == sa.bindparam("which")
)
_UNSET_DEFAULT = (
    sa.update(FILES).where(FILES.c.name == sa.bindparam("which")).values({"default": False})
)
_INSERT_FILE = sa.insert(FILES)
_UPDATE_FILE = (
    sa.update(FILES)
    .where(FILES.c["_id"] == sa.bindparam("row_id"))
    .values(modified_at=sa.func.now())
)
_INSERT_URL = sa.insert(URLS)
BY_NAME = (
    sa.select(FILES)
    .where(FILES.c.name == sa.bindparam("which"))
    .order_by(FILES.c.name, FILES.c.version)
)
# Database faults worth another try, by code: SQLite busy/locked, PostgreSQL lock timeouts
# and deadlocks; SQLite's generic error and PostgreSQL's "undefined table" mean the database
# was replaced under us (its file deleted): migrate again, then retry.
_BUSY_SQLITE = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_BUSY_PG = {"40P01", "55P03", "40001"}
_GONE_SQLITE = {sqlite3.SQLITE_ERROR}
_GONE_PG = {"42P01"}
_DB_RETRY = RetryPolicy(attempts=6, backoff=0.05)


def parse_hash(text: str | None) -> tuple[str, str] | None:
    """``"sha256:<hex>"``, ``"md5:<hex>"`` or bare hex (sha256) -> ``(algo, hex)``."""
    if not text:
        return None
    algo, _, hexdigest = text.partition(":") if ":" in text else ("sha256", "", text)
    algo = algo.lower()
    if algo not in ("sha256", "md5") or not re.fullmatch(r"[0-9a-fA-F]+", hexdigest):
        raise ValueError(f"hash {text!r} is not sha256:<hex>, md5:<hex> or bare sha256 hex")
    want = 64 if algo == "sha256" else 32
    if len(hexdigest) != want:
        raise ValueError(f"hash {text!r}: a {algo} digest has {want} hex digits")
    return algo, hexdigest.lower()


def normal_hash(text: str) -> str:
    """The one spelling of a digest the records use: ``"<algo>:<lower hex>"``."""
    algo, hexdigest = parse_hash(text)  # type: ignore[misc]
    return f"{algo}:{hexdigest}"


def hash_file(path: Path, algo: str = "sha256") -> str:
    """``"<algo>:<hex>"`` of a local file."""
    return f"{algo}:{file_digest(path, algo)}"


@dataclass(frozen=True)
class CachedFile:
    """A cached version of a data file (a row of ``remote_files``).

    Attributes
    ----------
    accepted_hash
        For a download taken inside ``skip_hash_check()``: the expected digest it was accepted
        for (its real digest is ``hash``); None otherwise.
    """

    name: str
    version: int
    urls: tuple[str, ...]
    hash: str
    size: int
    path: Path
    is_default: bool
    skip_hash: bool
    created_at: datetime | None
    modified_at: datetime | None
    accepted_hash: str | None = None


def pick(rows: list[CachedFile], expected: str | None) -> CachedFile | None:
    """The version a request means among the records of one name: the one with the expected
    hash (or accepted for it inside ``skip_hash_check()``), else the default (else the
    newest)."""
    if expected is not None:
        want = normal_hash(expected)
        rows = [r for r in rows if r.hash == want] or [r for r in rows if r.accepted_hash == want]
    else:
        rows = [r for r in rows if r.is_default] or rows[-1:]
    return rows[-1] if rows else None


@dataclass
class PendingRecord:
    """A downloaded file waiting for the group commit."""

    name: str
    urls: tuple[str, ...]
    digest: str
    size: int
    rel: str
    url: str
    make_default: bool
    skip_hash: bool
    accepted_hash: str | None = None
    done: bool = False
    error: BaseException | None = None


def _write_records(db: Database, batch: Sequence[PendingRecord]) -> None:
    """One transaction; per file its row first, then its URL: a crash leaves neither."""
    with db.connect() as conn:
        for e in batch:
            rows = conn.execute(_NAME_ROWS, {"which": e.name}).all()
            mine = next((r for r in rows if r.hash == e.digest), None)
            if e.make_default and any(r.default for r in rows if r is not mine):
                conn.execute(_UNSET_DEFAULT, {"which": e.name})
            if mine is None:
                conn.execute(
                    _INSERT_FILE,
                    {
                        "name": e.name,
                        "version": max((r.version for r in rows), default=0) + 1,
                        "urls": json.dumps(list(e.urls)),
                        "hash": e.digest,
                        "size": e.size,
                        "path": e.rel,
                        "default": e.make_default,
                        "skip_hash": e.skip_hash,
                        "accepted_hash": e.accepted_hash,
                    },
                )
            else:
                values = {
                    "row_id": mine[0],
                    "default": e.make_default or bool(mine.default),
                    "size": e.size,
                    "path": e.rel,
                }
                if e.accepted_hash is not None:
                    values |= {"skip_hash": True, "accepted_hash": e.accepted_hash}
                conn.execute(_UPDATE_FILE, values)
            conn.execute(_INSERT_URL, {"url": e.url, "name": e.name, "hash": e.digest})


def _code(exc: BaseException) -> tuple[int | None, str | None]:
    """The SQLite error code and the PostgreSQL SQLSTATE of a database error (or None)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlite_errorcode", None), getattr(orig, "sqlstate", None)


class Records:
    """The records of one cache: a database that recovers when its file is deleted.

    Parameters
    ----------
    cache_dir
        The cache folder (paths in the records are relative to it).
    database_url
        SQLAlchemy URL of the records' database.
    """

    def __init__(self, cache_dir: Path, database_url: str) -> None:
        self.cache_dir = cache_dir
        self.database_url = database_url
        self._db: Database | None = None
        self._lock = threading.RLock()  # the database handle
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[PendingRecord] = []

    def database(self) -> Database:
        with self._lock:
            if self._db is None or (
                self.database_url.startswith("sqlite:///")
                and not Path(self.database_url.removeprefix("sqlite:///")).exists()
            ):
                forget_migration(self.database_url)
                self._db = Database(self.cache_dir, self.database_url)
            return self._db

    def _retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, sa.exc.OperationalError | sa.exc.ProgrammingError):
            return False
        sqlite_code, sqlstate = _code(exc)
        return sqlite_code in _BUSY_SQLITE | _GONE_SQLITE or sqlstate in _BUSY_PG | _GONE_PG

    def _reset_if_gone(self, exc: BaseException) -> None:
        sqlite_code, sqlstate = _code(exc)
        if sqlite_code in _GONE_SQLITE or sqlstate in _GONE_PG:
            with self._lock:
                self._db = None
                forget_migration(self.database_url)

    def run(self, fn: Callable[[Database], Any]) -> Any:
        """``fn(database)``, retried while the database is busy or was replaced."""
        return _DB_RETRY.call(
            lambda: fn(self.database()),
            what=f"remote data records in {self.cache_dir}",
            retry_if=self._retryable,
            before_retry=self._reset_if_gone,
            quiet=True,
        )

    def to_cached(self, row: Any) -> CachedFile:
        return CachedFile(
            name=row.name,
            version=row.version,
            urls=tuple(json.loads(row.urls)),
            hash=row.hash,
            size=row.size,
            path=self.cache_dir / row.path,
            is_default=bool(row.default),
            skip_hash=bool(row.skip_hash),
            created_at=row.created_at,
            modified_at=row.modified_at,
            accepted_hash=row.accepted_hash,
        )

    def query(self, stmt: Any, params: dict[str, Any] | None = None) -> list[CachedFile]:
        def q(db: Database) -> list[CachedFile]:
            with db.engine.connect() as conn:
                return [self.to_cached(r) for r in conn.execute(stmt, params or {})]

        return self.run(q)

    def rows(self, *where: Any) -> list[CachedFile]:
        """Records matching ``where``, by name then version (Core, not ORM)."""
        return self.query(sa.select(FILES).where(*where).order_by(FILES.c.name, FILES.c.version))

    def of_name(self, name: str) -> list[CachedFile]:
        """Every version of ``name`` (a statement built once: every fetch's path)."""
        return self.query(BY_NAME, {"which": name})

    def add(self, entry: PendingRecord) -> None:
        """Record a file in place (file row, then its URL) before returning.

        Threads of this process commit together: a thread that finds records waiting writes
        them all in one transaction (group commit), so that parallel downloads neither queue
        for one transaction each nor sleep in SQLite's busy handler (steps of up to 100 ms);
        other processes still meet the busy timeout.
        """
        with self._pending_lock:
            self._pending.append(entry)
        with self._write_lock:
            if not entry.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    self.run(functools.partial(_write_records, batch=batch))
                except BaseException as exc:
                    for e in batch:
                        e.error = exc
                    raise
                finally:
                    for e in batch:
                        e.done = True
        if entry.error is not None:
            raise entry.error

    def urls(self) -> list[str]:
        def q(db: Database) -> list[str]:
            with db.engine.connect() as conn:
                return sorted({r[0] for r in conn.execute(sa.select(URLS.c.url))})

        return self.run(q)

    def delete(self, name: str | None = None) -> None:
        """Delete the records of ``name`` (or all)."""

        def delete(db: Database) -> None:
            with db.connect() as conn:
                if name:
                    conn.execute(sa.delete(FILES).where(FILES.c.name == name))
                    conn.execute(sa.delete(URLS).where(URLS.c.name == name))
                else:
                    conn.execute(sa.delete(FILES))
                    conn.execute(sa.delete(URLS))

        self.run(delete)
