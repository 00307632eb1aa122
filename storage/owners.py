"""Who is doing something: the owner of a claim or a pixel cache (``host:pid[:thread]``), and
whether that owner is gone (a process of this host that no longer runs: killed, crashed)."""

from __future__ import annotations

import os
import socket
import threading


def owner_id() -> str:
    """This thread of this process on this host: ``host:pid:thread``."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


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


def owner_gone(owner: str) -> bool:
    """:func:`process_gone` for an ``host:pid[:thread]`` owner."""
    host, _, rest = owner.partition(":")
    return process_gone(host, rest.split(":", 1)[0])
