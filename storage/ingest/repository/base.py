"""The repository interface: a folder of files addressed by repository-relative keys.

:class:`Repository` holds everything that is the same on every backend (key validation,
listing, ``put_tree``'s ordering, the retry policy, error wrapping and secret redaction); a
backend class (:mod:`.local`, :mod:`.memory`, :mod:`.azure`) supplies the few primitives that
differ. Keys are validated by :func:`astroflow.storage.keys.validate_key`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

import fsspec

from astroflow.models.errors import InvalidKeyError, RepositoryError, RepositoryUnreachableError
from astroflow.models.repository import PutTreeResult, RepositoryCheck
from astroflow.storage.ingest.repository.breaker import breaker_for
from astroflow.storage.ingest.repository_ref import RepositoryRef
from astroflow.storage.keys import validate_key
from astroflow.storage.retry import RetryPolicy

__all__ = ["CONTENT_TYPES", "Repository", "content_type_for"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTENT_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".wtml": "application/xml",
    ".xml": "application/xml",
    ".json": "application/json",
    ".fits": "application/fits",
    ".fit": "application/fits",
    ".fts": "application/fits",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".txt": "text/plain",
    ".flag": "text/plain",
}


def content_type_for(key: str) -> str:
    """MIME type of a key from its extension (``application/octet-stream`` if unknown)."""
    return CONTENT_TYPES.get(os.path.splitext(key)[1].lower(), "application/octet-stream")


class Repository:
    """A folder of files addressed by repository-relative keys.

    Use :func:`astroflow.storage.ingest.repository.open_repository` rather than a constructor.

    Parameters
    ----------
    fs
        The fsspec filesystem.
    root
        The root path inside ``fs`` (no trailing ``/``).
    ref
        The handle the repository was opened from (its URL, no credentials).
    secrets
        Strings to redact from error messages.
    max_workers
        Concurrent uploads in :meth:`put_tree`.
    retries
        Attempts for each transient-failing write (the first included).
    backoff
        Seconds before the first retry; doubled for each further one.
    """

    #: ``"local"``, ``"memory"`` or ``"azure"`` (shown by ``astroflow repo check``).
    backend: ClassVar[str] = ""
    #: whether the URL's user part names something (Azure's ``container@account``), not a
    #: credential (refused for every other backend)
    account_in_url: ClassVar[bool] = False
    #: Exception classes of this backend's transport worth retrying.
    transient: ClassVar[tuple[type[BaseException], ...]] = (ConnectionError, TimeoutError)
    #: Exception classes that mean "the endpoint does not answer": counted by the circuit
    #: breaker (remote backends only; a local disk has no endpoint).
    connection_faults: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        root: str,
        ref: RepositoryRef,
        *,
        secrets: tuple[str, ...] = (),
        max_workers: int = 16,
        retries: int = 4,
        backoff: float = 0.25,
    ) -> None:
        self._fs = fs
        self._root = root.rstrip("/") if root != "/" else root
        self.ref = ref
        self.url = ref.url
        self._secrets = secrets
        self.max_workers = max_workers
        self.retries = retries
        self.backoff = backoff

    # -- identity -----------------------------------------------------------------------------

    @classmethod
    def from_ref(cls, ref: RepositoryRef, **options: Any) -> Repository:
        """The repository ``ref`` names (a backend's constructor from its handle).

        Raises
        ------
        RepositoryError
            For a URL or credential this backend cannot use.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __reduce__(self) -> tuple[Callable[..., Repository], tuple[RepositoryRef]]:
        # Never pickle the filesystem (it may hold credentials): re-open from the handle.
        from astroflow.storage.ingest.repository import open_repository

        return (open_repository, (self.ref,))

    @property
    def local_root(self) -> Path | None:
        """The root folder on disk for a local repository, else None."""
        return None

    @property
    def is_local(self) -> bool:
        return self.local_root is not None

    def retry_policy(self) -> RetryPolicy:
        """The policy of this repository's writes (``retries`` attempts, ``backoff``)."""
        return RetryPolicy(
            attempts=max(1, self.retries), backoff=self.backoff, transient=self.transient
        )

    def _path(self, key: str, *, allow_root: bool = False) -> str:
        validate_key(key, allow_root=allow_root)
        if key == "":
            return self._root
        if self._root in ("", "/"):
            return f"{self._root}{key}" if self._root == "/" else key
        return f"{self._root}/{key}"

    def _key_of(self, path: str) -> str:
        path = path.rstrip("/")
        root = self._root.rstrip("/")
        if root and path.startswith(root + "/"):
            return path[len(root) + 1 :]
        if not root:
            return path
        raise RepositoryError(f"path {path!r} is outside repository {self.url}")

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, action: str, key: str, exc: BaseException) -> RepositoryError:
        message = self._redact(f"{type(exc).__name__}: {exc}")
        return RepositoryError(f"could not {action} {key!r} in {self.url}: {message}")

    def _call(
        self,
        action: str,
        key: str,
        fn: Callable[[], T],
        *,
        retry: bool = False,
        policy: RetryPolicy | None = None,
    ) -> T:
        """Run ``fn`` under the retry policy (one attempt unless ``retry``), wrapping failures
        into :class:`RepositoryError` (``FileNotFoundError`` stays what it is).

        On a remote backend each attempt goes through the repository's circuit breaker: once
        the endpoint has failed to answer a few times in a row, calls fail at once with
        :class:`RepositoryUnreachableError` instead of waiting out their own timeouts.
        """
        if policy is None:
            policy = self.retry_policy() if retry else self.retry_policy().once()
        breaker = breaker_for(self.url) if self.connection_faults else None

        def guarded() -> T:
            if breaker is None:
                return fn()
            breaker.check()
            try:
                result = fn()
            except self.connection_faults as exc:
                breaker.fault(self._redact(f"{type(exc).__name__}: {exc}")[:300])
                raise
            breaker.success()
            return result

        try:
            return policy.call(
                guarded,
                what=f"{action} {key!r} in {self.url}",
                describe=lambda exc: self._redact(type(exc).__name__),
            )
        except (InvalidKeyError, RepositoryError):
            raise
        except FileNotFoundError:
            raise FileNotFoundError(f"no file {key!r} in {self.url}") from None
        except self.connection_faults as exc:
            message = self._redact(f"{type(exc).__name__}: {exc}")
            raise RepositoryUnreachableError(
                f"repository {self.url} is unreachable: could not {action} {key!r}: {message}"
            ) from None
        except Exception as exc:
            err = self._error(action, key, exc)
            if self._redact(str(exc)) != str(exc):
                raise err from None
            raise err from exc

    # -- backend primitives (overridden where a backend differs) ------------------------------

    def _write_file(self, path: str, key: str, data: bytes) -> None:
        """Store ``data`` at ``path`` atomically, replacing any file there."""
        self._fs.pipe_file(path, data)

    def _upload_file(self, local_path: str, path: str, key: str) -> None:
        """Copy the local file to ``path`` atomically, replacing any file there."""
        with open(local_path, "rb") as f:
            self._fs.pipe_file(path, f.read())

    def _open_writer(self, path: str, mode: str) -> contextlib.AbstractContextManager[IO[Any]]:
        return self._fs.open(path, mode)

    def _entries(self, path: str) -> list[dict[str, Any]]:
        try:
            return self._fs.ls(path, detail=True)
        except FileNotFoundError:
            return []

    def _check_root(self) -> None:
        """Raise :class:`RepositoryError` when the root does not exist (see :meth:`check`)."""

    def _remove_temp_leftovers(self, prefix: str) -> int:
        """Remove temporary files of killed writers under ``prefix`` (none on object stores:
        they have no partial uploads)."""
        return 0

    def _remove_empty_folders(self, prefix: str) -> None:
        """Remove what :meth:`remove_tree` leaves of a folder (object stores: nothing)."""

    # -- reading ------------------------------------------------------------------------------

    def modified(self, key: str) -> datetime | None:
        """When the file at ``key`` was last written (a local file's mtime, a blob's
        Last-Modified), aware; None when the backend does not say.

        Raises
        ------
        FileNotFoundError
            When there is no such file.
        """
        path = self._path(key)
        info = self._call("stat", key, lambda: self._fs.info(path), retry=True)
        for field in ("last_modified", "LastModified", "mtime", "created"):
            value = info.get(field)
            if isinstance(value, datetime):
                return value if value.tzinfo else value.replace(tzinfo=UTC)
            if isinstance(value, int | float):
                return datetime.fromtimestamp(value, UTC)
        return None

    def exists(self, key: str) -> bool:
        """Whether a file (or folder) exists at ``key``."""
        path = self._path(key)
        return self._call("check", key, lambda: self._fs.exists(path))

    def isfile(self, key: str) -> bool:
        """Whether a file exists at ``key``."""
        path = self._path(key)
        return self._call("check", key, lambda: self._fs.isfile(path))

    def read_bytes(self, key: str) -> bytes:
        """The whole content of the file at ``key``.

        Raises
        ------
        FileNotFoundError
            When there is no such file.
        """
        path = self._path(key)
        return self._call("read", key, lambda: self._fs.cat_file(path), retry=True)

    def read_text(self, key: str, encoding: str = "utf-8") -> str:
        return self.read_bytes(key).decode(encoding)

    def open(self, key: str, mode: str = "rb") -> contextlib.AbstractContextManager[IO[Any]]:
        """Open ``key`` for reading (``"rb"``/``"r"``) or writing (``"wb"``/``"w"``).

        Writes are atomic on every backend: a local file is written to a temporary file in the
        same folder and renamed into place on close; a blob is uploaded on close.
        """
        path = self._path(key)
        if "r" in mode:
            try:
                return self._fs.open(path, mode)
            except FileNotFoundError:
                raise FileNotFoundError(f"no file {key!r} in {self.url}") from None
        return self._open_writer(path, mode)

    def list_folders(self) -> list[str]:
        """Names of the folders at the top level of the repository, sorted."""
        return self.list_dir("", kind="directory")

    def list_dir(self, key: str = "", kind: str | None = None) -> list[str]:
        """Names directly inside ``key`` (``kind`` = ``"directory"`` or ``"file"`` filters)."""
        path = self._path(key, allow_root=True)
        names = []
        for entry in self._call("list", key, lambda: self._entries(path)):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(".") or (kind and entry.get("type") != kind):
                continue
            names.append(name)
        return sorted(set(names))

    def find(self, prefix: str = "") -> list[str]:
        """Keys of every file under ``prefix`` (the whole repository by default), sorted."""
        path = self._path(prefix, allow_root=True)

        def _find() -> list[str]:
            try:
                return self._fs.find(path)
            except FileNotFoundError:
                return []

        keys = [self._key_of(p) for p in self._call("list", prefix, _find)]
        return sorted(k for k in keys if not any(s.startswith(".") for s in k.split("/")))

    def walk(self, prefix: str = "") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like :func:`os.walk`: yields ``(folder_key, subfolder_names, file_names)``."""
        tree: dict[str, tuple[set[str], set[str]]] = {}
        base = prefix.rstrip("/")
        for key in self.find(prefix):
            rel = key[len(base) + 1 :] if base else key
            parts = rel.split("/")
            folder = base
            for part in parts[:-1]:
                tree.setdefault(folder, (set(), set()))[0].add(part)
                folder = f"{folder}/{part}" if folder else part
            tree.setdefault(folder, (set(), set()))[1].add(parts[-1])
        for folder in sorted(tree):
            dirs, files = tree[folder]
            yield folder, sorted(dirs), sorted(files)

    # -- writing ------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the repository root (a local folder, an Azure container) if missing."""

    def require_reachable(self) -> None:
        """List the top level once (retried); raise :class:`RepositoryUnreachableError` when
        the endpoint does not answer, so that a run stops before it starts to upload."""
        path = self._path("", allow_root=True)
        probe = replace(self.retry_policy(), attempts=min(2, max(1, self.retries)))
        self._call("list", "", lambda: self._entries(path), policy=probe)

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` to ``key``, replacing any file there.

        Atomic: a local write goes to a temporary file in the same folder, then is renamed; a
        blob upload is atomic per blob. Retried with backoff on transient errors.
        """
        path = self._path(key)
        self._call("write", key, lambda: self._write_file(path, key, data), retry=True)

    def write_text(self, key: str, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(key, text.encode(encoding))

    def _put_file(self, local_path: str, key: str) -> int:
        """Upload one local file to ``key`` (atomic, overwriting); returns its size in bytes."""
        path = self._path(key)
        size = os.path.getsize(local_path)
        self._call("upload", key, lambda: self._upload_file(local_path, path, key), retry=True)
        return size

    def put_tree(
        self,
        local_dir: str | os.PathLike[str],
        dest: str,
        marker: str | None = "index.wtml",
        *,
        prune: bool = True,
    ) -> PutTreeResult:
        """Upload a local folder to ``dest``, the ``marker`` file strictly last.

        Order of operations, so that a reader that sees the marker sees a complete tree:

        1. an existing remote marker is removed (the old version stops being "published");
        2. every other file is uploaded concurrently (``max_workers``), overwriting, with its
           Content-Type on Azure, each retried with backoff on transient errors;
        3. with ``prune``, remote files under ``dest`` that are not in the new tree are removed;
        4. the marker is uploaded, only if every other file succeeded.

        Raises
        ------
        RepositoryError
            When a file could not be uploaded; the marker is then not written.
        """
        validate_key(dest)
        root = Path(local_dir)
        if not root.is_dir():
            raise RepositoryError(f"put_tree source {str(root)!r} is not a folder")
        files: dict[str, str] = {}
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                full = os.path.join(dirpath, name)
                rel = Path(full).relative_to(root).as_posix()
                files[validate_key(f"{dest}/{rel}")] = full
        marker_key = f"{dest}/{marker}" if marker else None
        if marker_key and marker_key not in files:
            raise RepositoryError(f"put_tree source {str(root)!r} has no marker file {marker!r}")

        if marker_key and self.exists(marker_key):
            self.remove(marker_key)
        gone = self._remove_temp_leftovers(dest)
        if gone:
            log.info("removed %d temporary leftovers under %s/%s", gone, self.url, dest)
        others = sorted(k for k in files if k != marker_key)
        failures: list[str] = []
        total = 0
        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
            futures = {k: pool.submit(self._put_file, files[k], k) for k in others}
            for key, fut in futures.items():
                try:
                    total += fut.result()
                except Exception as exc:
                    failures.append(f"{key}: {exc}")
        if failures:
            shown = "; ".join(failures[:5])
            more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
            raise RepositoryError(
                f"put_tree to {dest!r} in {self.url}: {len(failures)} of {len(others)} files "
                f"failed, marker not written: {shown}{more}"
            )
        pruned = 0
        if prune:
            stale = sorted(set(self.find(dest)) - set(files))
            for key in stale:
                self.remove(key)
            pruned = len(stale)
        if marker_key:
            total += self._put_file(files[marker_key], marker_key)
        log.info("uploaded %d files (%d bytes) to %s/%s", len(files), total, self.url, dest)
        return PutTreeResult(dest=dest, files=len(files), bytes=total, pruned=pruned)

    def remove(self, key: str) -> None:
        """Remove the file at ``key`` (no error if it is already gone)."""
        path = self._path(key)

        def _rm() -> None:
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm_file(path)

        self._call("remove", key, _rm, retry=True)

    def remove_tree(self, prefix: str) -> int:
        """Remove every file under ``prefix``; returns how many were removed.

        Raises
        ------
        RepositoryError
            If files remain afterwards (adlfs swallows some delete errors; we check).
        """
        keys = self.find(prefix)
        for key in keys:
            self.remove(key)
        self._remove_empty_folders(prefix)
        remaining = self.find(prefix)
        if remaining:
            raise RepositoryError(
                f"could not remove {len(remaining)} file(s) under {prefix!r} in {self.url}"
            )
        return len(keys)

    # -- diagnostics --------------------------------------------------------------------------

    def check(self) -> RepositoryCheck:
        """Reachability and write permission: list the top level, write, read and delete a
        probe file. Never raises for an unreachable repository; the error is in the result."""

        def result(reachable: bool, writable: bool, error: Exception | None) -> RepositoryCheck:
            return RepositoryCheck(
                url=self.url,
                backend=self.backend,
                reachable=reachable,
                writable=writable,
                entries=entries,
                error=self._redact(str(error)) if error is not None else None,
            )

        entries: tuple[str, ...] = ()
        try:
            self._call("check", "", self._check_root)
            entries = tuple(self.list_dir(""))
        except Exception as exc:
            return result(False, False, exc)
        probe = f".astroflow-check-{uuid.uuid4().hex}"
        payload = b"astroflow write check\n"
        try:
            self.write_bytes(probe, payload)
            if self.read_bytes(probe) != payload:
                raise RepositoryError("probe file read back different bytes")
            self.remove(probe)
        except Exception as exc:
            return result(True, False, exc)
        return result(True, True, None)
