"""Transport of the remote data manager: one downloader per URL scheme (pooch's downloaders).

A downloader streams one URL into an open file while hashing, and says what went wrong with a
typed error: :class:`TransportError` carries the HTTP ``status`` when there was an answer, and
:class:`ConnectionFaultError` (a subclass) marks faults without one (refused, reset, timed out,
broken body), which are worth retrying. :func:`downloader_for` picks the downloader by scheme.

HTTP(S) goes through urllib3 (pooled connections, timeouts always set, redirects followed, its
own retries off because mirrors and backoff are the manager's, proxies from the environment);
every other URL through fsspec.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

import urllib3

from astroflow.models.errors import DownloadError
from astroflow.storage import http

CHUNK = 1 << 20


class TransportError(DownloadError):
    """One attempt at one URL failed.

    Attributes
    ----------
    url
        The URL tried.
    status
        The HTTP status of the answer, or None when there was none.
    """

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.status = status


class ConnectionFaultError(TransportError):
    """No complete answer: connection refused or reset, a timeout, a body cut short."""


class Downloader(Protocol):
    """Streams ``url`` into ``out``, feeding every chunk to ``digest``; returns the size."""

    def __call__(self, url: str, out: IO[bytes], digest: Any) -> int: ...


class HTTPDownloader:
    """HTTP(S) through pooled urllib3 connections (direct or through the environment's proxy).

    Parameters
    ----------
    timeout
        Connect and read timeout of each request, seconds.
    maxsize
        Connections kept per host.
    verify_tls
        Verify servers' TLS certificates (False only for sources configured with
        ``force_insecure_tls``).
    """

    def __init__(self, timeout: float, maxsize: int = 16, *, verify_tls: bool = True) -> None:
        self.timeout = timeout
        self.maxsize = maxsize
        self.verify_tls = verify_tls
        self._lock = threading.Lock()
        self._pools: dict[str | None, urllib3.PoolManager] = {}
        self._proxy_for: dict[tuple[str, str], str | None] = {}

    def _pool(self, url: str) -> urllib3.PoolManager:
        """The pool for ``url``'s proxy (reading the environment costs ~1 ms: once per host)."""
        parts = urlsplit(url)
        with self._lock:
            key = (parts.scheme, parts.hostname or "")
            if key not in self._proxy_for:
                self._proxy_for[key] = http.proxy_for(url)
            proxy = self._proxy_for[key]
            if proxy not in self._pools:
                self._pools[proxy] = http.pool(
                    proxy,
                    connect=self.timeout,
                    read=self.timeout,
                    maxsize=self.maxsize,
                    verify_tls=self.verify_tls,
                )
            return self._pools[proxy]

    def __call__(self, url: str, out: IO[bytes], digest: Any) -> int:
        size = 0
        try:
            resp = self._pool(url).request("GET", url, preload_content=False)
        except http.Error as exc:
            raise ConnectionFaultError(url, http.describe(exc)) from None
        try:
            if resp.status >= 400:
                raise TransportError(url, f"HTTP {resp.status}", status=resp.status)
            declared = resp.headers.get("content-length")
            expected: int | None = None
            if declared is not None:
                try:
                    expected = int(declared)
                except ValueError:
                    raise TransportError(
                        url, f"the server sent a malformed Content-Length {declared[:40]!r}"
                    ) from None
            # raw bytes as served (no content decoding): those are what the hash names
            for chunk in resp.stream(CHUNK, decode_content=False):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            if expected is not None and expected != size:
                # a short body is the server's answer, not a fault of the line: next mirror
                raise TransportError(
                    url, f"body is {size} bytes but Content-Length says {expected}"
                )
        except http.Error as exc:
            raise ConnectionFaultError(url, http.describe(exc)) from None
        finally:
            resp.release_conn()
        return size

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.clear()
            self._pools.clear()


def fsspec_download(url: str, out: IO[bytes], digest: Any) -> int:
    """Any URL fsspec opens (``file://``, ``memory://``, object stores)."""
    import fsspec

    size = 0
    try:
        with fsspec.open(url, "rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except OSError as exc:  # a missing file, a refused permission
        raise TransportError(url, f"{type(exc).__name__}: {exc}") from None
    return size


def downloader_for(url: str, by_scheme: dict[str, Downloader]) -> Downloader:
    """The downloader of ``url``'s scheme in ``by_scheme``, else :func:`fsspec_download`."""
    return by_scheme.get(urlsplit(url).scheme.lower(), fsspec_download)


Progress = Callable[[int, int], None]
"""A progress callback: ``(finished, total)`` after each file of a batch."""
