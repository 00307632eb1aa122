"""HTTP plumbing shared by the remote data manager and the feed queries (urllib3).

Retries are off in urllib3 (callers retry with their own backoff and mirrors), redirects are
followed, timeouts are always set, and the usual ``http_proxy`` / ``https_proxy`` /
``no_proxy`` environment variables are honoured.
"""

from __future__ import annotations

import urllib.request
import warnings
from urllib.parse import urlsplit

import urllib3

Error = urllib3.exceptions.HTTPError  # connection refused, timeouts, broken bodies


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (None: go direct)."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def pool(
    proxy: str | None,
    *,
    connect: float,
    read: float,
    maxsize: int = 10,
    verify_tls: bool = True,
) -> urllib3.PoolManager:
    """A thread-safe connection pool (through ``proxy`` when given), without urllib3's retries.

    Parameters
    ----------
    connect, read
        Timeouts in seconds for connecting and for each read.
    maxsize
        Connections kept per host.
    verify_tls
        Verify servers' TLS certificates (False only for a source configured with
        ``force_insecure_tls``).
    """
    options: dict[str, object] = {
        "num_pools": 32,
        "maxsize": maxsize,
        "timeout": urllib3.Timeout(connect=connect, read=read),
        "retries": urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=10),
    }
    if not verify_tls:
        options["cert_reqs"] = "CERT_NONE"
        # the operator chose this (force_insecure_tls): say it once in the config, not in a
        # warning per request (a filter is process-wide; set only when such a pool exists)
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


def describe(exc: Exception) -> str:
    """``"<Kind>: <message>"`` of a urllib3 error, unwrapping the cause that MaxRetryError hides."""
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}"
