"""One repository interface over fsspec: a local folder, ``memory://`` or an Azure Blob container.

Open a repository from a URL with :func:`open_repository`:

- a local path or ``file:///path``;
- ``memory://name/prefix`` (tests);
- ``az://container/prefix`` or ``abfs://container/prefix`` (Azure Blob through adlfs).

Azure credentials come from the environment only: by default whatever adlfs reads
(``AZURE_STORAGE_CONNECTION_STRING`` and friends), or ``azure_conn_env="NAME"``, the name of an
environment variable holding a connection string (toasty's ``--azure-conn-env``). Secrets never
appear in reprs, logs, exceptions or pickles: a pickled repository re-reads the environment when
it is unpickled.

All operations take repository-relative keys, validated by :func:`storage.keys.validate_key`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem

from models.errors import InvalidKeyError, RepositoryError
from models.repository import PutTreeResult, RepositoryCheck
from storage.keys import validate_container_name, validate_key

__all__ = ["CONTENT_TYPES", "Repository", "content_type_for", "open_repository"]

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

_TRANSIENT_NAMES = {
    "ServiceRequestError",
    "ServiceResponseError",
    "ServiceRequestTimeoutError",
    "ServiceResponseTimeoutError",
    "IncompleteReadError",
    "ClientConnectionError",
    "ServerDisconnectedError",
}
_PERMANENT_OS_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def content_type_for(key: str) -> str:
    """MIME type of a key from its extension (``application/octet-stream`` if unknown)."""
    return CONTENT_TYPES.get(os.path.splitext(key)[1].lower(), "application/octet-stream")


def _is_transient(exc: BaseException) -> bool:
    """Whether an error is worth retrying (network faults, timeouts, 5xx, 408, 429)."""
    if isinstance(exc, (InvalidKeyError, *_PERMANENT_OS_ERRORS)):
        return False
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status >= 500 or status in (408, 429)
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    return isinstance(exc, ConnectionError | TimeoutError | OSError)


def _secret_parts(conn_str: str | None) -> tuple[str, ...]:
    """The connection string and its secret fields, for redaction."""
    if not conn_str:
        return ()
    parts = [conn_str]
    for field in re.split(r";", conn_str):
        name, _, value = field.partition("=")
        if name.strip().lower() in ("accountkey", "sharedaccesssignature") and value:
            parts.append(value)
    return tuple(p for p in parts if len(p) >= 6)


class Repository:
    """A folder of files addressed by repository-relative keys.

    Use :func:`open_repository` rather than the constructor.

    Parameters
    ----------
    fs
        The fsspec filesystem.
    root
        The root path inside ``fs`` (no trailing ``/``).
    url
        The URL the repository was opened from (no credentials).
    backend
        ``"local"``, ``"memory"`` or ``"azure"``.
    azure_conn_env
        Name of the environment variable the connection string came from, if any.
    secrets
        Strings to redact from error messages.
    max_workers
        Concurrent uploads in :meth:`put_tree`.
    retries
        Attempts for each transient-failing write (the first included).
    backoff
        Seconds before the first retry; doubled for each further one.
    """

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        root: str,
        url: str,
        *,
        backend: str,
        azure_conn_env: str | None = None,
        secrets: tuple[str, ...] = (),
        max_workers: int = 16,
        retries: int = 4,
        backoff: float = 0.25,
    ) -> None:
        self._fs = fs
        self._root = root.rstrip("/") if root != "/" else root
        self.url = url
        self.backend = backend
        self.azure_conn_env = azure_conn_env
        self._secrets = secrets
        self.max_workers = max_workers
        self.retries = retries
        self.backoff = backoff

    # -- identity -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        env = f", azure_conn_env={self.azure_conn_env!r}" if self.azure_conn_env else ""
        return f"Repository({self.url!r}{env})"

    def __reduce__(self) -> tuple[Callable[..., Repository], tuple[str, str | None]]:
        # Never pickle the filesystem (it holds credentials): re-open from the environment.
        return (open_repository, (self.url, self.azure_conn_env))

    @property
    def is_local(self) -> bool:
        return self.backend == "local"

    @property
    def local_root(self) -> Path | None:
        """The root folder on disk for a local repository, else None."""
        return Path(self._root) if self.is_local else None

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
        if self.backend == "memory" and not path.startswith("/"):
            path = "/" + path
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

    def _call(self, action: str, key: str, fn: Callable[[], T], *, retry: bool = False) -> T:
        """Run ``fn``, retrying transient errors with backoff, wrapping failures."""
        attempts = self.retries if retry else 1
        delay = self.backoff
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except (InvalidKeyError, RepositoryError):
                raise
            except FileNotFoundError:
                raise FileNotFoundError(f"no file {key!r} in {self.url}") from None
            except Exception as exc:
                if attempt < attempts and _is_transient(exc):
                    log.warning(
                        "%s %r in %s failed (%s), retry %d of %d in %.2f s",
                        action,
                        key,
                        self.url,
                        self._redact(type(exc).__name__),
                        attempt,
                        attempts - 1,
                        delay,
                    )
                    time.sleep(delay)
                    delay *= 2
                    continue
                err = self._error(action, key, exc)
                if self._redact(str(exc)) != str(exc):
                    raise err from None
                raise err from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reading ------------------------------------------------------------------------------

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
        if self.is_local:
            return _atomic_local_writer(path, mode)
        self._ensure_parent(path)
        return self._fs.open(path, mode)

    def list_folders(self) -> list[str]:
        """Names of the folders at the top level of the repository, sorted."""
        return self.list_dir("", kind="directory")

    def list_dir(self, key: str = "", kind: str | None = None) -> list[str]:
        """Names directly inside ``key`` (``kind`` = ``"directory"`` or ``"file"`` filters)."""
        path = self._path(key, allow_root=True)

        def _ls() -> list[dict[str, Any]]:
            if self.backend == "azure":
                self._fs.invalidate_cache(path)
            try:
                return self._fs.ls(path, detail=True)
            except FileNotFoundError:
                return []

        names = []
        for entry in self._call("list", key, _ls):
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
        if self.is_local:
            Path(self._root).mkdir(parents=True, exist_ok=True)
        elif self.backend == "azure":
            container = self._root.split("/", 1)[0]
            if not self._call("check", "", lambda: self._fs.exists(container)):
                self._call("create container", container, lambda: self._fs.mkdir(container))

    def _ensure_parent(self, path: str) -> None:
        if self.is_local:
            os.makedirs(os.path.dirname(path), exist_ok=True)

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` to ``key``, replacing any file there.

        Atomic: a local write goes to a temporary file in the same folder, then is renamed; a
        blob upload is atomic per blob. Retried with backoff on transient errors.
        """
        path = self._path(key)

        def _write() -> None:
            if self.is_local:
                _atomic_local_write_bytes(path, data)
            else:
                self._fs.pipe_file(path, data, **self._upload_kwargs(key))

        self._call("write", key, _write, retry=True)

    def write_text(self, key: str, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(key, text.encode(encoding))

    def _upload_kwargs(self, key: str) -> dict[str, Any]:
        if self.backend == "azure":
            return {"overwrite": True, "content_settings": {"content_type": content_type_for(key)}}
        return {}

    def _put_file(self, local_path: str, key: str) -> int:
        """Upload one local file to ``key`` (atomic, overwriting); returns its size in bytes."""
        path = self._path(key)
        size = os.path.getsize(local_path)

        def _put() -> None:
            if self.is_local:
                _atomic_local_copy(local_path, path)
            elif self.backend == "azure":
                self._fs.put_file(local_path, path, **self._upload_kwargs(key))
            else:
                with open(local_path, "rb") as f:
                    self._fs.pipe_file(path, f.read())

        self._call("upload", key, _put, retry=True)
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
        self._remove_temp_leftovers(dest)
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

    def _remove_temp_leftovers(self, prefix: str) -> int:
        """Remove temporary files a killed writer left under ``prefix`` (local only: object
        stores have no partial uploads)."""
        if not self.is_local:
            return 0
        root = Path(self._path(prefix))
        gone = 0
        if root.is_dir():
            for path in root.rglob(".*.tmp-*"):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    gone += 1
        if gone:
            log.info("removed %d temporary leftovers under %s/%s", gone, self.url, prefix)
        return gone

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
        if self.is_local:
            shutil.rmtree(self._path(prefix), ignore_errors=True)
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
        entries: tuple[str, ...] = ()
        try:
            if self.backend == "azure":
                container = self._root.split("/", 1)[0]
                if not self._fs.exists(container):
                    raise RepositoryError(f"Azure container {container!r} does not exist")
            elif self.is_local and not Path(self._root).is_dir():
                raise RepositoryError(f"folder {self._root!r} does not exist")
            entries = tuple(self.list_dir(""))
        except Exception as exc:
            return RepositoryCheck(
                url=self.url,
                backend=self.backend,
                reachable=False,
                writable=False,
                error=self._redact(str(exc)),
            )
        probe = f".astroflow-check-{uuid.uuid4().hex}"
        payload = b"astroflow write check\n"
        try:
            self.write_bytes(probe, payload)
            if self.read_bytes(probe) != payload:
                raise RepositoryError("probe file read back different bytes")
            self.remove(probe)
        except Exception as exc:
            return RepositoryCheck(
                url=self.url,
                backend=self.backend,
                reachable=True,
                writable=False,
                entries=entries,
                error=self._redact(str(exc)),
            )
        return RepositoryCheck(
            url=self.url, backend=self.backend, reachable=True, writable=True, entries=entries
        )


# -- local atomic writes --------------------------------------------------------------------


def _temp_path(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.tmp-{uuid.uuid4().hex[:12]}")


def _atomic_local_write_bytes(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _atomic_local_copy(src: str, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _temp_path(path)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _atomic_local_writer(path: str, mode: str) -> Iterator[IO[Any]]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _temp_path(path)
    try:
        with open(tmp, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- opening --------------------------------------------------------------------------------


def _azure_filesystem(conn_str: str | None, sdk_retries: int | None) -> fsspec.AbstractFileSystem:
    from adlfs import AzureBlobFileSystem

    kwargs: dict[str, Any] = {
        "skip_instance_cache": True,
        "connection_timeout": 20,
        "read_timeout": 120,
    }
    if conn_str:
        kwargs["connection_string"] = conn_str
    fs = AzureBlobFileSystem(**kwargs)
    if conn_str and sdk_retries is not None:
        # adlfs gives no way to tune the Azure SDK's own retry policy (3 exponential retries
        # from 15 s); rebuild its client with ours when asked.
        from adlfs.spec import _USER_AGENT
        from azure.storage.blob.aio import BlobServiceClient

        fs.service_client = BlobServiceClient.from_connection_string(
            conn_str, user_agent=_USER_AGENT, retry_total=sdk_retries
        )
    return fs


def open_repository(
    url: str | os.PathLike[str],
    azure_conn_env: str | None = None,
    azure_sdk_retries: int | None = None,
    **options: Any,
) -> Repository:
    """Open a repository from a URL or local path.

    Parameters
    ----------
    url
        A local path, ``file:///path``, ``memory://name/prefix``, ``az://container/prefix`` or
        ``abfs://container/prefix``.
    azure_conn_env
        For Azure: the *name* of an environment variable that holds the connection string.
        Without it adlfs reads its usual variables (``AZURE_STORAGE_CONNECTION_STRING``, ...).
    azure_sdk_retries
        For Azure with a connection string: how many times the Azure SDK itself retries a
        request (default: the SDK's own policy). The repository's ``retries`` apply on top.
    **options
        Passed to :class:`Repository` (``max_workers``, ``retries``, ``backoff``).

    Raises
    ------
    RepositoryError
        For an unsupported scheme, a URL with credentials or a query string, or a missing
        environment variable.
    InvalidKeyError
        For an invalid Azure container name or prefix.
    """
    text = os.fspath(url)
    if "://" not in text:
        return Repository(
            LocalFileSystem(),
            os.path.abspath(os.path.expanduser(text)),
            text,
            backend="local",
            **options,
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment or parts.username or parts.password:
        raise RepositoryError(
            f"repository URL {parts.scheme}://{parts.hostname or ''}{parts.path} has credentials "
            "or a query string; credentials come from environment variables only"
        )
    if scheme == "file":
        path = os.path.abspath(parts.netloc + parts.path)
        return Repository(LocalFileSystem(), path, text, backend="local", **options)
    if scheme == "memory":
        fs = fsspec.filesystem("memory")
        root = "/" + (parts.netloc + parts.path).strip("/")
        if root != "/":
            validate_key(root.lstrip("/"))
        return Repository(fs, root, text, backend="memory", **options)
    if scheme in ("az", "abfs", "abfss"):
        container = validate_container_name(parts.netloc)
        prefix = parts.path.strip("/")
        if prefix:
            validate_key(prefix)
        conn_str: str | None = None
        if azure_conn_env:
            conn_str = os.environ.get(azure_conn_env)
            if not conn_str:
                raise RepositoryError(
                    f"environment variable {azure_conn_env!r} (named by azure_conn_env) is not "
                    "set or empty"
                )
        secrets = _secret_parts(conn_str) + _secret_parts(
            os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        )
        for var in ("AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_SECRET"):
            if len(os.environ.get(var, "")) >= 6:
                secrets += (os.environ[var],)
        root = f"{container}/{prefix}" if prefix else container
        return Repository(
            _azure_filesystem(conn_str, azure_sdk_retries),
            root,
            f"az://{root}",
            backend="azure",
            azure_conn_env=azure_conn_env,
            secrets=secrets,
            **options,
        )
    raise RepositoryError(
        f"unsupported repository URL scheme {scheme!r} in {text!r}: use a local path, file://, "
        "memory://, az:// or abfs://"
    )
