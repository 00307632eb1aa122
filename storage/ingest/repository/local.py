"""A repository in a local folder (a path or ``file:///path``)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import IO, Any, ClassVar
from urllib.parse import urlsplit

from fsspec.implementations.local import LocalFileSystem

from astroflow.models.errors import RepositoryError
from astroflow.storage import files
from astroflow.storage.ingest.repository.base import Repository
from astroflow.storage.ingest.repository_ref import RepositoryRef


class LocalRepository(Repository):
    """A folder on this machine; every write goes through :func:`storage.files.atomic_write`."""

    backend: ClassVar[str] = "local"
    # A local write fails for a full disk or a dropped network mount: any OSError but the
    # permanent ones (a missing file, a permission) is worth another try.
    transient: ClassVar[tuple[type[BaseException], ...]] = (OSError,)

    @classmethod
    def from_ref(cls, ref: RepositoryRef, **options: Any) -> LocalRepository:
        """The folder at ``ref.url`` (a path or ``file://``; ``~`` expanded, made absolute)."""
        path = ref.url
        if "://" in path:
            parts = urlsplit(path)
            path = parts.netloc + parts.path
        root = os.path.abspath(os.path.expanduser(path))
        return cls(LocalFileSystem(), root, ref, **options)

    @property
    def local_root(self) -> Path:
        return Path(self._root)

    def _write_file(self, path: str, key: str, data: bytes) -> None:
        files.write_bytes_atomic(path, data)

    def _upload_file(self, local_path: str, path: str, key: str) -> None:
        files.copy_atomic(local_path, path)

    def _open_writer(self, path: str, mode: str) -> contextlib.AbstractContextManager[IO[Any]]:
        return files.atomic_write(path, mode)

    def ensure(self) -> None:
        Path(self._root).mkdir(parents=True, exist_ok=True)

    def _check_root(self) -> None:
        if not Path(self._root).is_dir():
            raise RepositoryError(f"folder {self._root!r} does not exist")

    def _remove_temp_leftovers(self, prefix: str) -> int:
        return files.remove_temp_leftovers(Path(self._path(prefix)))

    def _remove_empty_folders(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)
