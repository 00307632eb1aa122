"""Whether the owner of a claim or a pixel cache (a host and a process id) is gone: a process
of this host that no longer runs (killed, crashed)."""

from __future__ import annotations

import os
import socket


def process_gone(host: str, pid: str | int) -> bool:
    """True when ``pid`` names a process of this host that no longer runs (other hosts' and
    unreadable owners count as alive: we cannot tell)."""
    if host != socket.gethostname() or not str(pid).isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
