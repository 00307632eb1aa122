"""Run locks: a live holder in another process stops a second run with its name; a holder
killed with SIGKILL leaves the lock free; a process takes its own lock again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from astroflow.models.errors import BusyError
from astroflow.storage.locks import holder, run_lock
from tests.conftest import ROOT

_HOLDER = """
import sys
from astroflow.storage.locks import run_lock
with run_lock(sys.argv[1], "work folder", "flow run 'ingest-wwt'"):
    print("held", flush=True)
    sys.stdin.readline()  # until the test lets go
"""


@pytest.fixture
def other_holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of ``tmp_path / 'work'`` until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "work")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_a_live_holder_is_named_and_nothing_is_taken(
    tmp_path: Path, other_holder: subprocess.Popen[str]
) -> None:
    work = tmp_path / "work"
    with pytest.raises(BusyError) as caught, run_lock(work, "work folder", "process 1"):
        pytest.fail("a second holder got the lock")
    message = str(caught.value)
    assert str(work) in message
    assert f"pid {other_holder.pid}" in message
    assert "flow run 'ingest-wwt'" in message
    owner = holder(work)
    assert owner is not None
    assert owner["pid"] == str(other_holder.pid)


def test_a_killed_holder_leaves_the_lock_free(
    tmp_path: Path, other_holder: subprocess.Popen[str]
) -> None:
    work = tmp_path / "work"
    os.kill(other_holder.pid, signal.SIGKILL)
    other_holder.wait(10)
    assert holder(work) is None  # the kernel let go with the process
    with run_lock(work, "work folder", "process 2"):
        owner = holder(work)
        assert owner is not None
        assert owner["pid"] == str(os.getpid())
    assert holder(work) is None


def test_a_waiting_run_gets_the_lock_when_the_holder_ends(
    tmp_path: Path, other_holder: subprocess.Popen[str]
) -> None:
    work = tmp_path / "work"
    got: list[str] = []

    def wait_for_it() -> None:
        with run_lock(work, "work folder", "waiter", wait_s=120, poll_s=0.05):
            got.append(str(holder(work)["pid"]))  # type: ignore[index]

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    assert other_holder.stdin is not None
    other_holder.stdin.close()  # the holder ends its block and exits
    other_holder.wait(10)
    waiter.join(120)
    assert got == [str(os.getpid())]


def test_a_process_takes_its_own_lock_again(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with run_lock(work, "work folder", "outer"):
        with run_lock(work, "work folder", "inner (a subflow)"):
            assert holder(work)["run"] == "outer"  # type: ignore[index]
        assert holder(work) is not None  # the outer block still holds it
    assert holder(work) is None
