"""Run locks: one run at a time per work folder or workspace.

A lock is an advisory ``flock`` on ``<folder>/.astroflow-lock``, a file that also names its
holder (host, process id, run, since when) for the message a second run gets. The kernel drops
the lock when its process ends, however it ends (kill -9 included): a dead owner's lock is
free for the next run without any clean-up, and what a dead run left (``.partial`` folders,
pixel caches) is the next holder's to clean. A process that holds a lock may take it again
(a flow and its subflows, which run in one process); it is released when the outermost holder
lets go.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from astroflow.models.errors import BusyError

LOCK_FILE = ".astroflow-lock"

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (descriptor, depth), this process's
_guard = threading.Lock()


def lock_path(folder: str | Path) -> Path:
    """The lock file of a work folder or workspace."""
    return Path(folder).expanduser().resolve() / LOCK_FILE


def holder(folder: str | Path) -> dict[str, str] | None:
    """Who holds the lock of ``folder`` (``host``, ``pid``, ``run``, ``since``), or None when
    no live process holds it."""
    path = lock_path(folder)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _owner(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _owner(fd: int) -> dict[str, str]:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        data = json.loads(text)
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def describe(owner: dict[str, str]) -> str:
    """``run 'night-...' (pid 123 on host, since ...)`` for a lock's holder."""
    run = owner.get("run") or "another run"
    where = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"
    since = f", since {owner['since']}" if owner.get("since") else ""
    return f"{run} ({where}{since})"


@contextlib.contextmanager
def run_lock(
    folder: str | Path, what: str, run: str = "", wait_s: float = 0.0, poll_s: float = 0.5
) -> Iterator[Path]:
    """Hold the lock of ``folder`` (a ``what``: "work folder", "workspace") for the block.

    Parameters
    ----------
    run
        What holds it, for the message another run gets (a flow run's name, a command).
    wait_s
        Seconds to wait for a live holder to finish before giving up (0: give up at once).

    Raises
    ------
    BusyError
        Naming the folder and its holder, when another live process holds the lock.
    """
    path = lock_path(folder)
    with _guard:
        reentered = path in _held
        if reentered:
            held, depth = _held[path]
            _held[path] = (held, depth + 1)
    if reentered:
        try:
            yield path
        finally:
            _release(path)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        # a folder this process cannot write: nothing here can collide; the run's own
        # checks say what is wrong with the folder (read-only, missing) in their words
        yield path
        return
    try:
        deadline = time.monotonic() + max(wait_s, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    owner = _owner(fd)
                    waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
                    raise BusyError(
                        f"{what} {path.parent} is in use by {describe(owner)}{waited}: "
                        "this run did nothing; start it again once that run has ended "
                        "(ASTROFLOW_LOCK_WAIT_S makes a run wait for it)"
                    ) from None
                time.sleep(poll_s)
        owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run": run,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    with _guard:
        _held[path] = (fd, 1)
    try:
        yield path
    finally:
        _release(path)


def _release(path: Path) -> None:
    with _guard:
        fd, depth = _held[path]
        if depth > 1:
            _held[path] = (fd, depth - 1)
            return
        del _held[path]
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)  # no holder named while nobody holds it
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
