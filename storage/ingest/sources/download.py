"""Copying a non-HTTP image (a local path or any fsspec URL) into the work directory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from astroflow.models.errors import DownloadError
from astroflow.storage.files import atomic_write


def download(url: str, dest: Path) -> tuple[str, int]:
    """Copy a file from a local path or any fsspec URL to ``dest`` atomically.

    HTTP(S) downloads go through :class:`storage.remote.RemoteData` (retries, mirrors, size
    checks, cache) instead.

    Returns
    -------
    sha256, nbytes

    Raises
    ------
    DownloadError
        For an unreadable source or an empty (0-byte) file; ``dest`` is then not created.
    """
    from astroflow.storage.remote.transport import fsspec_download  # (urllib3: lazily)

    if urlsplit(url).scheme.lower() in ("http", "https"):
        raise DownloadError(f"{url}: HTTP downloads go through RemoteData")
    digest = hashlib.sha256()
    try:
        with atomic_write(dest) as out:
            nbytes = fsspec_download(url, out, digest)
            if nbytes == 0:
                raise DownloadError(f"{url}: empty (0-byte) file")
    except DownloadError:
        raise
    except Exception as exc:
        raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc
    return digest.hexdigest(), nbytes
