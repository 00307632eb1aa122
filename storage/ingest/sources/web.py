"""One GET of a source's page or record (a feed, a search page, an API record), retried.

Images are not read here: they go through :class:`storage.remote.RemoteData` (cache, size
checks, mirrors). Pages and records are small and change, so they are never cached.
"""

from __future__ import annotations

import json
from typing import Any

from astroflow.models.errors import DownloadError
from astroflow.models.settings import Settings
from astroflow.storage.retry import RetryPolicy, is_transient_status


def get_with_retries(
    url: str, *, verify_tls: bool = True, policy: RetryPolicy | None = None
) -> tuple[int, bytes]:
    """GET ``url`` (redirects followed, timeouts from the settings); connection errors,
    timeouts, 5xx and 429 are retried under ``policy`` (default: ``http_attempts`` tries from
    0.5 s). Returns the status and body of the answer (a 404 is an answer, not retried).

    Parameters
    ----------
    verify_tls
        Verify the server's TLS certificate (False for ``force_insecure_tls`` sources).

    Raises
    ------
    DownloadError
        When the last attempt failed too (its reason in the message).
    """
    from astroflow.storage import http  # urllib3: loaded only when a source is queried
    from astroflow.storage.remote.transport import ConnectionFaultError, TransportError

    settings = Settings()
    policy = policy or RetryPolicy(attempts=settings.http_attempts, backoff=0.5)
    pool = http.pool(
        http.proxy_for(url),
        connect=settings.http_connect_timeout,
        read=settings.http_read_timeout,
        verify_tls=verify_tls,
    )

    def attempt() -> tuple[int, bytes]:
        try:
            resp = pool.request("GET", url)
        except http.Error as exc:
            raise ConnectionFaultError(url, http.describe(exc)) from None
        if is_transient_status(resp.status):
            raise TransportError(url, f"HTTP {resp.status}", status=resp.status)
        return resp.status, resp.data

    try:
        return policy.with_transient(ConnectionFaultError).call(attempt, what=f"GET {url}")
    finally:
        pool.clear()


def get_json(url: str, what: str, *, verify_tls: bool = True) -> Any:
    """The JSON document at ``url`` (a feed, a record), fetched with :func:`get_with_retries`.

    Raises
    ------
    DownloadError
        Naming ``what`` and the URL, for an answer other than 200 or a body that is not JSON.
    """
    status, body = get_with_retries(url, verify_tls=verify_tls)
    if status != 200:
        raise DownloadError(f"{what} {url}: HTTP {status}")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise DownloadError(f"{what} {url} is not JSON: {exc}") from None
