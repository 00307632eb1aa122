"""The remote data manager: cached, hash-verified downloads with mirrors, parallel fetching,
versions and overrides (after the SunPy data-manager design, without its pitfalls).

Order of operations for a download: stream into a temporary file in the cache folder while
hashing -> check size (``Content-Length``) and hash -> rename into place -> record the file ->
record the URL. A failed, truncated or mismatching download leaves neither a file nor a record.
A file lock per name makes concurrent processes and threads download a file once.

HTTP goes through urllib3 (pooled connections, timeouts always set, redirects followed; its
own retries are off because mirrors and backoff are ours), other URLs through fsspec.
Records are written with SQLAlchemy Core statements built once, and threads of one process
commit their records together (group commit): per-download database work was what bounded
parallel fetching on a small machine.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
import urllib3
from filelock import FileLock
from sqlmodel import select

from models.errors import DownloadError, HashMismatchError
from models.tables import RemoteFile, RemoteUrl
from storage import http
from storage.database import Database, forget_migration
from storage.files import file_digest

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
CHUNK = 1 << 20
_FILES = RemoteFile.__table__
_URLS = RemoteUrl.__table__
# Statements of every download, built once (building SQLAlchemy statements costs more than
# running them on SQLite).
_NAME_ROWS = sa.select(_FILES.c["_id"], _FILES.c["default"], _FILES.c.hash, _FILES.c.version).where(
    _FILES.c.name == sa.bindparam("which")
)
_UNSET_DEFAULT = (
    sa.update(_FILES).where(_FILES.c.name == sa.bindparam("which")).values({"default": False})
)
_INSERT_FILE = sa.insert(_FILES)
_UPDATE_FILE = (
    sa.update(_FILES)
    .where(_FILES.c["_id"] == sa.bindparam("row_id"))
    .values(modified_at=sa.func.now())
)
_INSERT_URL = sa.insert(_URLS)
_BY_NAME = (
    sa.select(_FILES)
    .where(_FILES.c.name == sa.bindparam("which"))
    .order_by(_FILES.c.name, _FILES.c.version)
)


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


def _safe_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", name) or ".." in name:
        raise ValueError(f"data file name {name[:80]!r} must be 1-128 of [A-Za-z0-9._+-], no '..'")
    return name


def hash_file(path: Path, algo: str = "sha256") -> str:
    """``"<algo>:<hex>"`` of a local file."""
    return f"{algo}:{file_digest(path, algo)}"


@dataclass(frozen=True)
class _Request:
    urls: tuple[str, ...]
    hash: str | None


@dataclass(frozen=True)
class CachedFile:
    """A cached version of a data file (a row of ``remote_files``)."""

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


def _pick(rows: list[CachedFile], expected: str | None) -> CachedFile | None:
    """The version a request means among the records of one name: the one with the expected
    hash, else the default (else the newest)."""
    if expected is not None:
        algo, hexdigest = parse_hash(expected)  # type: ignore[misc]
        rows = [r for r in rows if r.hash == f"{algo}:{hexdigest}"]
        # an md5 request matches a file recorded by sha256 only after hashing: see fetch
    else:
        rows = [r for r in rows if r.is_default] or rows[-1:]
    return rows[-1] if rows else None


@dataclass
class _PendingRecord:
    name: str
    urls: tuple[str, ...]
    digest: str
    size: int
    rel: str
    url: str
    make_default: bool
    skip_hash: bool
    done: bool = False
    error: BaseException | None = None


def _write_records(db: Database, batch: Sequence[_PendingRecord]) -> None:
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
                    },
                )
            else:
                conn.execute(
                    _UPDATE_FILE,
                    {
                        "row_id": mine[0],
                        "default": e.make_default or bool(mine.default),
                        "size": e.size,
                        "path": e.rel,
                    },
                )
            conn.execute(_INSERT_URL, {"url": e.url, "name": e.name, "hash": e.digest})


class RemoteData:
    """Cached, verified downloads.

    Parameters
    ----------
    cache_dir
        Folder for the files (``files/<name>/<hash>/<name>``), locks and, by default, the
        SQLite database ``remote-data.db``.
    database_url
        Another database for the records (SQLAlchemy URL).
    timeout
        Connect/read timeout per request, seconds (always set).
    retries
        Attempts per mirror on connection errors, timeouts and 5xx answers.
    backoff
        First retry delay in seconds; doubles each attempt.
    max_workers
        Threads of :meth:`fetch_many`.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        database_url: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_workers: int = 8,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser().resolve()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{self.cache_dir / 'remote-data.db'}"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_workers = max_workers
        self._overrides: contextvars.ContextVar[dict[str, _Request] | None] = (
            contextvars.ContextVar(f"overrides-{id(self)}", default=None)
        )
        self._required: contextvars.ContextVar[dict[str, Path] | None] = contextvars.ContextVar(
            f"required-{id(self)}", default=None
        )
        self._skip_hash: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"skip-{id(self)}", default=False
        )
        # records of the names a fetch_many asks for, read in one query before its threads start
        self._preloaded: contextvars.ContextVar[dict[str, list[CachedFile]] | None] = (
            contextvars.ContextVar(f"preloaded-{id(self)}", default=None)
        )
        self._db: Database | None = None
        self._lock = threading.RLock()  # the database handle and the HTTP pools
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_PendingRecord] = []
        self._pools: dict[str | None, urllib3.PoolManager] = {}
        self._proxy_for: dict[tuple[str, str], str | None] = {}
        self.requests_made = 0  # HTTP/fsspec requests issued (for tests and benchmarks)

    # -- database (recovers when the file is deleted) ---------------------------------------

    def _database(self) -> Database:
        with self._lock:
            return self._database_locked()

    def _database_locked(self) -> Database:
        if self._db is None or (
            self.database_url.startswith("sqlite:///")
            and not Path(self.database_url[len("sqlite:///") :]).exists()
        ):
            forget_migration(self.database_url)
            self._db = Database(self.cache_dir, self.database_url)
        return self._db

    def _with_db(self, fn: Callable[[Database], Any]) -> Any:
        for attempt in range(5):
            try:
                return fn(self._database())
            except sa.exc.OperationalError as exc:
                text = str(exc).lower()
                if "no such table" in text:
                    self._db = None
                    forget_migration(self.database_url)
                elif "locked" not in text and "busy" not in text:
                    raise
                time.sleep(0.05 * 2**attempt)
        return fn(self._database())

    # -- records ------------------------------------------------------------------------------

    def _to_cached(self, row: Any) -> CachedFile:
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
        )

    def _rows(self, *where: Any) -> list[CachedFile]:
        """Records matching ``where``, by name then version (Core, not ORM)."""
        return self._query(
            sa.select(_FILES).where(*where).order_by(_FILES.c.name, _FILES.c.version)
        )

    def _query(self, stmt: Any, params: dict[str, Any] | None = None) -> list[CachedFile]:
        def q(db: Database) -> list[CachedFile]:
            with db.engine.connect() as conn:
                return [self._to_cached(r) for r in conn.execute(stmt, params or {})]

        return self._with_db(q)

    def _record(
        self,
        name: str,
        urls: Sequence[str],
        digest: str,
        size: int,
        rel: str,
        url: str,
        make_default: bool,
        skip_hash: bool,
    ) -> None:
        """Record a file in place (file row, then its URL) before returning.

        Threads of this process commit together: a thread that finds records waiting writes
        them all in one transaction (group commit), so that parallel downloads neither queue
        for one transaction each nor sleep in SQLite's busy handler (steps of up to 100 ms);
        other processes still meet the busy timeout.
        """
        entry = _PendingRecord(name, tuple(urls), digest, size, rel, url, make_default, skip_hash)
        with self._pending_lock:
            self._pending.append(entry)
        with self._write_lock:
            if not entry.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    self._with_db(functools.partial(_write_records, batch=batch))
                except BaseException as exc:
                    for e in batch:
                        e.error = exc
                    raise
                finally:
                    for e in batch:
                        e.done = True
        if entry.error is not None:
            raise entry.error

    # -- lookups ------------------------------------------------------------------------------

    def _find(self, name: str, expected: str | None) -> CachedFile | None:
        # every fetch's path: a statement built once
        return _pick(self._query(_BY_NAME, {"which": name}), expected)

    def _usable(self, rec: CachedFile, verify: bool) -> bool:
        try:
            st = rec.path.stat()
        except FileNotFoundError:
            return False
        if st.st_size != rec.size:
            return False
        if verify and not rec.skip_hash:
            return hash_file(rec.path, rec.hash.split(":")[0]) == rec.hash
        return True

    # -- downloads ----------------------------------------------------------------------------

    def _http(self, url: str) -> urllib3.PoolManager:
        """The pooled, thread-safe connection manager for ``url`` (direct or through the
        proxy the environment names; reading the environment costs ~1 ms, so once per host)."""
        parts = urlsplit(url)
        with self._lock:
            key = (parts.scheme, parts.hostname or "")
            if key not in self._proxy_for:
                self._proxy_for[key] = http.proxy_for(url)
            proxy = self._proxy_for[key]
            if proxy not in self._pools:
                self._pools[proxy] = http.pool(
                    proxy, connect=self.timeout, read=self.timeout, maxsize=2 * self.max_workers
                )
            return self._pools[proxy]

    def close(self) -> None:
        """Close the HTTP connection pools (also done at garbage collection)."""
        with self._lock:
            for pool in self._pools.values():
                pool.clear()
            self._pools.clear()

    def _stream(self, url: str, tmp: Path, algo: str) -> tuple[str, int]:
        """One attempt from one URL into ``tmp``; returns (hash, size)."""
        digest = hashlib.new(algo)
        size = 0
        self.requests_made += 1
        scheme = urlsplit(url).scheme.lower()
        with open(tmp, "wb") as out:
            if scheme in ("http", "https"):
                resp = self._http(url).request("GET", url, preload_content=False)
                try:
                    if resp.status >= 400:
                        raise DownloadError(f"{url}: HTTP {resp.status}")
                    expected = resp.headers.get("content-length")
                    # raw bytes as served (no content decoding): those are what the hash names
                    for chunk in resp.stream(CHUNK, decode_content=False):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                    if expected is not None and int(expected) != size:
                        raise DownloadError(
                            f"{url}: body is {size} bytes but Content-Length says {expected}"
                        )
                finally:
                    resp.release_conn()
            else:
                import fsspec

                with fsspec.open(url, "rb") as src:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
        return f"{algo}:{digest.hexdigest()}", size

    def _download(self, name: str, req: _Request, skip: bool) -> tuple[Path, str, int, str]:
        parsed = parse_hash(req.hash)
        algo = parsed[0] if parsed else "sha256"
        want = f"{parsed[0]}:{parsed[1]}" if parsed else None
        tmp_dir = self.cache_dir / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        tmp = tmp_dir / f"{name}.{os.getpid()}.{id(req)}.part"
        problems: list[str] = []
        try:
            for url in req.urls:
                for attempt in range(self.retries):
                    try:
                        digest, size = self._stream(url, tmp, algo)
                    except http.Error as exc:  # connection, timeout, broken body
                        problems.append(f"{url}: {http.describe(exc)}")
                    except DownloadError as exc:
                        problems.append(str(exc))
                        if "HTTP 5" not in str(exc) and "HTTP 429" not in str(exc):
                            break  # 4xx and truncation: next mirror
                    except OSError as exc:  # fsspec: missing file etc.
                        problems.append(f"{url}: {exc}")
                        break
                    else:
                        if size == 0:
                            problems.append(f"{url}: empty (0-byte) body")
                            break
                        if want and digest != want and not skip:
                            problems.append(f"{url}: hash {digest} does not match {want}")
                            break
                        final = self._place(name, digest)
                        final.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(tmp, final)
                        return final, digest, size, url
                    if attempt + 1 < self.retries:
                        time.sleep(self.backoff * 2**attempt)
        finally:
            tmp.unlink(missing_ok=True)
        kind = (
            HashMismatchError
            if problems and all("does not match" in p for p in problems)
            else DownloadError
        )
        raise kind(
            f"could not download {name!r} from any of {len(req.urls)} mirror(s) "
            f"({', '.join(req.urls)}): " + "; ".join(problems[-6:])
        )

    def fetch(
        self,
        name: str,
        urls: Sequence[str] | str | None = None,
        sha256: str | None = None,
        *,
        hash: str | None = None,
        verify: bool = False,
    ) -> Path:
        """Make sure ``name`` is cached and verified; return its local path.

        Parameters
        ----------
        name
            The file's name (1-128 of ``[A-Za-z0-9._+-]``); also its name on disk.
        urls
            Mirrors, tried in order. Without URLs, the cached default version is returned.
        sha256, hash
            Expected digest: ``sha256:<hex>``, ``md5:<hex>`` or bare sha256 hex.
        verify
            Re-hash a cached file instead of trusting its size (and record).

        Raises
        ------
        DownloadError
            When no mirror gave the file (the message names the file and every mirror);
            :class:`HashMismatchError` when every mirror gave wrong content.
        """
        _safe_name(name)
        override = (self._overrides.get() or {}).get(name)
        if override is not None:
            req = override
        else:
            if isinstance(urls, str):
                urls = [urls]
            req = _Request(tuple(urls or ()), hash or sha256)
        expected = req.hash
        if expected:
            parse_hash(expected)
        skip = self._skip_hash.get()
        known = (self._preloaded.get() or {}).get(name)
        rec = _pick(known, expected) if known is not None else self._find(name, expected)
        if rec is not None and self._usable(rec, verify):
            return rec.path
        if not req.urls:
            raise DownloadError(f"{name!r} is not cached and no URL was given")
        locks = self.cache_dir / "locks"
        locks.mkdir(exist_ok=True)
        with FileLock(str(locks / f"{name}.lock"), timeout=600):
            # Another process may have finished it while we waited for the lock. With a known
            # hash its place is known: when nothing is there, neither check can succeed.
            if not expected or self._place(name, expected).exists():
                rec = self._find(name, expected)
                if rec is not None and self._usable(rec, verify):
                    return rec.path
                adopted = self._adopt(name, req) if expected else None
                if adopted is not None:
                    return adopted
            path, digest, size, url = self._download(name, req, skip)
            self._record(
                name,
                req.urls,
                digest,
                size,
                path.relative_to(self.cache_dir).as_posix(),
                url,
                make_default=override is None,
                skip_hash=skip,
            )
            log.info("downloaded %s (%d bytes) from %s", name, size, url)
            return path

    def _place(self, name: str, digest: str) -> Path:
        """Where the version of ``name`` with ``digest`` (any accepted spelling) lives."""
        return self.cache_dir / "files" / name / parse_hash(digest)[1][:16] / name  # type: ignore[index]

    def _adopt(self, name: str, req: _Request) -> Path | None:
        """A file already in place but unrecorded (the database was deleted): re-record it."""
        algo, hexdigest = parse_hash(req.hash)  # type: ignore[misc]
        path = self._place(name, f"{algo}:{hexdigest}")
        if path.is_file() and hash_file(path, algo) == f"{algo}:{hexdigest}":
            self._record(
                name,
                req.urls,
                f"{algo}:{hexdigest}",
                path.stat().st_size,
                path.relative_to(self.cache_dir).as_posix(),
                req.urls[0] if req.urls else "",
                make_default=True,
                skip_hash=False,
            )
            return path
        return None

    def fetch_many(self, items: Sequence[dict[str, Any]], *, progress: bool = True) -> list[Path]:
        """Fetch many files in parallel (``max_workers`` threads) with one progress bar.

        ``items`` are dicts of :meth:`fetch` keyword arguments (``name``, ``urls``,
        ``sha256``...). Returns the paths in order; raises the first error after all finished.
        """
        from rich.progress import Progress

        results: list[Path | BaseException] = [None] * len(items)  # type: ignore[list-item]
        with (
            Progress(disable=not progress, transient=True) as bar,
            ThreadPoolExecutor(max_workers=self.max_workers) as pool,
        ):
            task = bar.add_task("downloading", total=len(items))
            names = sorted({item["name"] for item in items})
            known: dict[str, list[CachedFile]] = {n: [] for n in names}
            for start in range(0, len(names), 500):
                for rec in self._rows(_FILES.c.name.in_(names[start : start + 500])):
                    known[rec.name].append(rec)
            token = self._preloaded.set(known)
            ctx = contextvars.copy_context()
            self._preloaded.reset(token)

            def one(i: int) -> None:
                try:
                    results[i] = ctx.copy().run(lambda: self.fetch(**items[i]))
                except BaseException as exc:
                    results[i] = exc
                bar.advance(task)

            list(pool.map(one, range(len(items))))
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return results  # type: ignore[return-value]

    # -- decorator and accessors ----------------------------------------------------------------

    def require(
        self, name: str, urls: Sequence[str], sha256: str | None = None, *, hash: str | None = None
    ) -> Callable[[F], F]:
        """Decorator: before the function runs, ``name`` is present and verified; inside it,
        :meth:`get` and :meth:`open` return that version."""

        def deco(fn: F) -> F:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                path = self.fetch(name, urls, sha256, hash=hash)
                token = self._required.set({**(self._required.get() or {}), name: path})
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._required.reset(token)

            return wrapper  # type: ignore[return-value]

        return deco

    def get(self, name: str) -> Path:
        """Local path of ``name``: the version required by the enclosing decorated call or
        override, else the default cached version.

        Raises
        ------
        DownloadError
            When ``name`` is not cached.
        """
        required = (self._required.get() or {}).get(name)
        if required is not None:
            return required
        override = (self._overrides.get() or {}).get(name)
        rec = self._find(name, override.hash if override else None)
        if rec is None or not rec.path.exists():
            raise DownloadError(f"{name!r} is not cached: fetch or require it first")
        return rec.path

    @contextlib.contextmanager
    def open(self, name: str, mode: str = "rb") -> Iterator[IO[Any]]:
        """Open the file :meth:`get` returns."""
        with open(self.get(name), mode) as f:
            yield f

    @contextlib.contextmanager
    def override(
        self,
        name: str,
        urls: Sequence[str] | str,
        sha256: str | None = None,
        *,
        hash: str | None = None,
    ) -> Iterator[None]:
        """Use another version of ``name`` inside the block (the default version is kept)."""
        if isinstance(urls, str):
            urls = [urls]
        token = self._overrides.set(
            {**(self._overrides.get() or {}), name: _Request(tuple(urls), hash or sha256)}
        )
        try:
            yield
        finally:
            self._overrides.reset(token)

    @contextlib.contextmanager
    def skip_hash_check(self) -> Iterator[None]:
        """Accept downloads whose hash differs from the expected one (recorded as such)."""
        token = self._skip_hash.set(True)
        try:
            yield
        finally:
            self._skip_hash.reset(token)

    # -- queries --------------------------------------------------------------------------------

    def by_hash(self, digest: str) -> CachedFile | None:
        algo, hexdigest = parse_hash(digest)  # type: ignore[misc]
        rows = self._rows(_FILES.c.hash == f"{algo}:{hexdigest}")
        return rows[-1] if rows else None

    def latest(self, name: str) -> CachedFile | None:
        """The most recently downloaded version of ``name``."""
        rows = self._rows(_FILES.c.name == name)
        return max(rows, key=lambda r: (r.created_at or datetime.min, r.version)) if rows else None

    def versions(self, name: str | None = None) -> list[CachedFile]:
        return self._rows(_FILES.c.name == name) if name else self._rows()

    def by_modified_time(
        self, name: str, after: datetime | None = None, before: datetime | None = None
    ) -> list[CachedFile]:
        out = []
        for r in self._rows(_FILES.c.name == name):
            stamp = r.modified_at
            if stamp is not None and stamp.tzinfo is None and after is not None and after.tzinfo:
                stamp = stamp.replace(tzinfo=after.tzinfo)
            if after is not None and (stamp is None or stamp <= after):
                continue
            if before is not None and (stamp is None or stamp >= before):
                continue
            out.append(r)
        return out

    def cached_urls(self) -> list[str]:
        def q(db: Database) -> list[str]:
            with db.session() as s:
                return sorted(set(s.exec(select(RemoteUrl.url)).all()))

        return self._with_db(q)

    def verify(self) -> list[tuple[CachedFile, bool, str]]:
        """Re-hash every cached version: ``(record, ok, problem)``."""
        out = []
        for rec in self._rows():
            if not rec.path.exists():
                out.append((rec, False, "file missing"))
            elif rec.path.stat().st_size != rec.size:
                out.append((rec, False, "size differs"))
            elif not rec.skip_hash and hash_file(rec.path, rec.hash.split(":")[0]) != rec.hash:
                out.append((rec, False, "hash differs"))
            else:
                out.append((rec, True, ""))
        return out

    def clear(self, name: str | None = None) -> int:
        """Delete cached files and their records (all, or one name). Returns files removed."""
        import shutil

        rows = self._rows(_FILES.c.name == name) if name else self._rows()

        def delete(db: Database) -> None:
            with db.session() as s:
                if name:
                    s.exec(sa.delete(RemoteFile).where(_FILES.c.name == name))
                    s.exec(sa.delete(RemoteUrl).where(RemoteUrl.name == name))
                else:
                    s.exec(sa.delete(RemoteFile))
                    s.exec(sa.delete(RemoteUrl))

        self._with_db(delete)
        target = self.cache_dir / "files" / name if name else self.cache_dir / "files"
        shutil.rmtree(target, ignore_errors=True)
        return len(rows)


_DEFAULT: RemoteData | None = None


def default_remote() -> RemoteData:
    """The instance configured from settings (``ASTROFLOW_CACHE_DIR``, default
    ``~/.cache/astroflow``; ``ASTROFLOW_REMOTE_DATABASE_URL``), made on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        from models.settings import Settings

        settings = Settings()
        _DEFAULT = RemoteData(settings.cache_dir, settings.remote_database_url)
    return _DEFAULT
