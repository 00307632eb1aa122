"""The remote data manager's API: cached, hash-verified downloads with mirrors, parallel
fetching, versions and overrides (after the SunPy data-manager design, without its pitfalls).

Order of operations for a download: stream into a temporary file in the cache folder while
hashing -> check size (``Content-Length``) and hash -> rename into place -> record the file ->
record the URL. A failed, truncated or mismatching download leaves neither a file nor a record.
A file lock per name makes concurrent processes and threads download a file once. The
records live in :mod:`.records`, the transport (a downloader per URL scheme) in
:mod:`.transport`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from filelock import FileLock

from astroflow.models.errors import DownloadError, HashMismatchError, InvalidKeyError
from astroflow.storage.database import writable
from astroflow.storage.files import temp_path
from astroflow.storage.keys import is_valid_id
from astroflow.storage.remote.records import (
    FILES,
    CachedFile,
    PendingRecord,
    Records,
    hash_file,
    normal_hash,
    parse_hash,
    pick,
)
from astroflow.storage.remote.transport import (
    ConnectionFaultError,
    Downloader,
    HTTPDownloader,
    Progress,
    TransportError,
    downloader_for,
)
from astroflow.storage.retry import RetryPolicy

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class NotCachedError(DownloadError):
    """No cached file matches a query (a name, a hash, a time range)."""


def _safe_name(name: str) -> str:
    if not is_valid_id(name):
        raise InvalidKeyError(
            f"data file name {name[:80]!r} must be 1-128 of [A-Za-z0-9._+-], no '..'"
        )
    return name


@dataclass(frozen=True)
class _Request:
    urls: tuple[str, ...]
    hash: str | None


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
    verify_tls
        Verify HTTPS servers' certificates (False only for a source configured with
        ``force_insecure_tls``).
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
        verify_tls: bool = True,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser().resolve()
        if not self.cache_dir.is_dir():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{self.cache_dir / 'remote-data.db'}"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_workers = max_workers
        self.records = Records(self.cache_dir, self.database_url)
        self._http = HTTPDownloader(timeout, maxsize=2 * max_workers, verify_tls=verify_tls)
        #: Downloaders by URL scheme; any other scheme goes through fsspec.
        self.downloaders: dict[str, Downloader] = {"http": self._http, "https": self._http}
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
        self.requests_made = 0  # HTTP/fsspec requests issued (for tests and benchmarks)

    def close(self) -> None:
        """Close the HTTP connection pools (also done at garbage collection)."""
        self._http.close()

    # -- lookups ------------------------------------------------------------------------------

    def _find(self, name: str, expected: str | None) -> CachedFile | None:
        return pick(self.records.of_name(name), expected)

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

    def _attempt(self, url: str, tmp: Path, algo: str) -> tuple[str, int]:
        """One attempt from one URL into ``tmp``; returns (hash, size)."""
        digest = hashlib.new(algo)
        self.requests_made += 1
        with open(tmp, "wb") as out:
            size = downloader_for(url, self.downloaders)(url, out, digest)
        if size == 0:
            raise TransportError(url, "empty (0-byte) body")
        return f"{algo}:{digest.hexdigest()}", size

    def _download(self, name: str, req: _Request, skip: bool) -> tuple[Path, str, int, str]:
        """Try each mirror in order (each under the retry policy); place the first good file."""
        want = normal_hash(req.hash) if req.hash else None
        algo = want.split(":")[0] if want else "sha256"
        tmp_dir = self.cache_dir / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        tmp = temp_path(tmp_dir / name)
        policy = RetryPolicy(
            attempts=max(1, self.retries), backoff=self.backoff, transient=(ConnectionFaultError,)
        )
        problems: list[DownloadError] = []
        try:
            for url in req.urls:
                try:
                    digest, size = policy.call(
                        lambda url=url: self._attempt(url, tmp, algo),
                        what=f"download of {name!r} from {url}",
                        describe=str,
                    )
                except TransportError as exc:  # this mirror gave up: next one
                    problems.append(exc)
                    continue
                if want and digest != want and not skip:
                    problems.append(
                        HashMismatchError(f"{url}: hash {digest} does not match {want}")
                    )
                    continue
                final = self._place(name, digest)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
                return final, digest, size, url
        finally:
            tmp.unlink(missing_ok=True)
        kind = (
            HashMismatchError
            if problems and all(isinstance(p, HashMismatchError) for p in problems)
            else DownloadError
        )
        raise kind(
            f"could not download {name!r} from any of {len(req.urls)} mirror(s) "
            f"({', '.join(req.urls)}): " + "; ".join(str(p) for p in problems[-6:])
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
        expected = normal_hash(req.hash) if req.hash else None
        skip = self._skip_hash.get()
        known = (self._preloaded.get() or {}).get(name)
        rec = pick(known, expected) if known is not None else self._find(name, expected)
        if rec is not None and self._usable(rec, verify):
            return rec.path
        if not req.urls:
            raise NotCachedError(f"{name!r} is not cached and no URL was given")
        if not writable(self.cache_dir):
            raise DownloadError(
                f"cannot download {name!r} ({req.urls[0]}): the cache folder {self.cache_dir} "
                "is read-only; cached files can be read, new ones need ASTROFLOW_CACHE_DIR "
                "(or cache_dir) to name a writable folder"
            )
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
            accepted = expected if skip and expected and digest != expected else None
            self.records.add(
                PendingRecord(
                    name=name,
                    urls=req.urls,
                    digest=digest,
                    size=size,
                    rel=path.relative_to(self.cache_dir).as_posix(),
                    url=url,
                    make_default=override is None,
                    skip_hash=accepted is not None,
                    accepted_hash=accepted,
                )
            )
            log.info("downloaded %s (%d bytes) from %s", name, size, url)
            return path

    def _place(self, name: str, digest: str) -> Path:
        """Where the version of ``name`` with ``digest`` (any accepted spelling) lives."""
        return self.cache_dir / "files" / name / parse_hash(digest)[1][:16] / name  # type: ignore[index]

    def _adopt(self, name: str, req: _Request) -> Path | None:
        """A file already in place but unrecorded (the database was deleted): re-record it."""
        want = normal_hash(req.hash)  # type: ignore[arg-type]
        path = self._place(name, want)
        if path.is_file() and hash_file(path, want.split(":")[0]) == want:
            self.records.add(
                PendingRecord(
                    name=name,
                    urls=req.urls,
                    digest=want,
                    size=path.stat().st_size,
                    rel=path.relative_to(self.cache_dir).as_posix(),
                    url=req.urls[0] if req.urls else "",
                    make_default=True,
                    skip_hash=False,
                )
            )
            return path
        return None

    def fetch_many(
        self, items: Sequence[dict[str, Any]], *, progress: Progress | None = None
    ) -> list[Path]:
        """Fetch many files in parallel (``max_workers`` threads).

        ``items`` are dicts of :meth:`fetch` keyword arguments (``name``, ``urls``,
        ``sha256``...). ``progress``, when given, is called with ``(finished, total)`` after
        each file (the command line draws its bar from it). Returns the paths in order; raises
        the first error after all finished.
        """
        results: list[Path | BaseException] = [None] * len(items)  # type: ignore[list-item]
        names = sorted({item["name"] for item in items})
        known: dict[str, list[CachedFile]] = {n: [] for n in names}
        for start in range(0, len(names), 500):
            for rec in self.records.rows(FILES.c.name.in_(names[start : start + 500])):
                known[rec.name].append(rec)
        token = self._preloaded.set(known)
        ctx = contextvars.copy_context()
        self._preloaded.reset(token)
        finished = 0

        def one(i: int) -> None:
            nonlocal finished
            try:
                results[i] = ctx.copy().run(lambda: self.fetch(**items[i]))
            except BaseException as exc:
                results[i] = exc
            if progress is not None:
                finished += 1
                progress(finished, len(items))

        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
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
        NotCachedError
            When ``name`` is not cached.
        """
        required = (self._required.get() or {}).get(name)
        if required is not None:
            return required
        override = (self._overrides.get() or {}).get(name)
        rec = self._find(name, override.hash if override else None)
        if rec is None or not rec.path.exists():
            raise NotCachedError(f"{name!r} is not cached: fetch or require it first")
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
        """Accept downloads whose hash differs from the expected one.

        Such a version is recorded with its real digest, ``skip_hash`` set and the expected
        digest it was accepted for (``accepted_hash``): later fetches asking for that digest,
        inside the block or after it, find it without downloading again; :meth:`by_hash` finds
        it by either digest.
        """
        token = self._skip_hash.set(True)
        try:
            yield
        finally:
            self._skip_hash.reset(token)

    # -- queries --------------------------------------------------------------------------------

    def by_hash(self, digest: str) -> CachedFile:
        """The cached version with this digest (or accepted for it by ``skip_hash_check``).

        Raises
        ------
        NotCachedError
            When no cached version has it.
        """
        want = normal_hash(digest)
        rows = self.records.rows(FILES.c.hash == want) or self.records.rows(
            FILES.c.accepted_hash == want
        )
        if not rows:
            raise NotCachedError(f"no cached file has the hash {want}")
        return rows[-1]

    def latest(self, name: str) -> CachedFile | None:
        """The most recently downloaded version of ``name`` (None when it is not cached)."""
        rows = self.records.rows(FILES.c.name == name)
        return max(rows, key=lambda r: (r.created_at or datetime.min, r.version)) if rows else None

    def versions(self, name: str | None = None) -> list[CachedFile]:
        """Every cached version (of ``name``, or of every file), by name then version."""
        return self.records.rows(FILES.c.name == name) if name else self.records.rows()

    def by_modified_time(
        self, name: str, after: datetime | None = None, before: datetime | None = None
    ) -> list[CachedFile]:
        """Versions of ``name`` last modified strictly between ``after`` and ``before``.

        Raises
        ------
        NotCachedError
            When none is (the message says whether ``name`` is cached at all).
        """
        rows = self.records.rows(FILES.c.name == name)
        out = []
        for r in rows:
            stamp = r.modified_at
            if stamp is not None and stamp.tzinfo is None and after is not None and after.tzinfo:
                stamp = stamp.replace(tzinfo=after.tzinfo)
            if after is not None and (stamp is None or stamp <= after):
                continue
            if before is not None and (stamp is None or stamp >= before):
                continue
            out.append(r)
        if not out:
            window = f"after {after}" if after else ""
            window += (" and " if after and before else "") + (f"before {before}" if before else "")
            detail = f"none of its {len(rows)} version(s) was modified {window}".rstrip()
            raise NotCachedError(f"{name!r}: {detail}" if rows else f"{name!r} is not cached")
        return out

    def cached_urls(self) -> list[str]:
        """Every URL a cached file came from, sorted."""
        return self.records.urls()

    def verify(self) -> list[tuple[CachedFile, bool, str]]:
        """Re-hash every cached version: ``(record, ok, problem)``."""
        out = []
        for rec in self.records.rows():
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
        rows = self.records.rows(FILES.c.name == name) if name else self.records.rows()
        self.records.delete(name)
        target = self.cache_dir / "files" / name if name else self.cache_dir / "files"
        shutil.rmtree(target, ignore_errors=True)
        return len(rows)


_DEFAULT: RemoteData | None = None


def default_remote() -> RemoteData:
    """The instance configured from settings (``ASTROFLOW_CACHE_DIR``, default
    ``~/.cache/astroflow``; ``ASTROFLOW_REMOTE_DATABASE_URL``), made on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        from astroflow.models.settings import Settings

        settings = Settings()
        _DEFAULT = RemoteData(settings.cache_dir, settings.remote_database_url)
    return _DEFAULT
