"""Command-line start-up: a newcomer's `astroflow prep` / `astroflow calibrate` against the same
commands on an already running Prefect server, in one run; and `prep` with both cores busy.

    python benchmarks/bench_cli.py

The newcomer has no Prefect configured (fresh PREFECT_HOME, no PREFECT_API_URL): the first
command starts astroflow's local server (`flows/server.py`), the following ones find it. The
peer is a `prefect server start` the "expert" runs himself, with PREFECT_API_URL set. Target:
from the second command on, the newcomer within 1.5x of the expert. Then, with two processes
spinning on both cores, a newcomer `prep` with ASTROFLOW_AUTOSTART_SERVER=false (Prefect's
temporary server) must still succeed.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.organiser_data import make_workspace  # noqa: E402

EXE = str(Path(sys.executable).with_name("astroflow"))
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ASTROFLOW_"))}
    env |= {"PREFECT_HOME": str(home / "prefect"), "ASTROFLOW_CACHE_DIR": str(home / "cache")}
    return env | extra


def _timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([EXE, *args], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"astroflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return elapsed


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    template = base / "template"
    make_workspace(template, np.random.default_rng(1), shape=(64, 64))
    newcomer, expert = base / "newcomer", base / "expert"
    for who in (newcomer, expert):
        shutil.copytree(template, who / "ws")

    env = _env(newcomer)
    first = _timed(["prep", str(newcomer / "ws")], env)  # starts astroflow's server
    shutil.rmtree(newcomer / "ws")
    shutil.copytree(template, newcomer / "ws")
    new_prep = _timed(["prep", str(newcomer / "ws")], env)
    new_cal = _timed(["calibrate", str(newcomer / "ws")], env)
    _timed(["server", "stop"], env)

    port = 4321
    server_env = _env(expert)
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        expert_env = _env(expert, PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
        from astroflow.flows.server import healthy

        while not healthy(expert_env["PREFECT_API_URL"]):
            time.sleep(0.5)
        _timed(["prep", str(template)], expert_env)  # warm the server, as the newcomer's
        exp_prep = _timed(["prep", str(expert / "ws")], expert_env)
        exp_cal = _timed(["calibrate", str(expert / "ws")], expert_env)
    finally:
        server.terminate()
        server.wait(30)

    print(f"newcomer: first command {first:.1f} s (starts the local server)")
    print(
        f"prep:      newcomer {new_prep:.1f} s, running server {exp_prep:.1f} s "
        f"-> {new_prep / exp_prep:.2f}x (target <= 1.5x)"
    )
    print(
        f"calibrate: newcomer {new_cal:.1f} s, running server {exp_cal:.1f} s "
        f"-> {new_cal / exp_cal:.2f}x (target <= 1.5x)"
    )

    busy = base / "busy"
    shutil.copytree(template, busy / "ws")
    spinners = [multiprocessing.Process(target=_spin, args=(120.0,)) for _ in range(2)]
    for p in spinners:
        p.start()
    try:
        busy_prep = _timed(
            ["prep", str(busy / "ws")], _env(busy, ASTROFLOW_AUTOSTART_SERVER="false")
        )
    finally:
        for p in spinners:
            p.terminate()
    print(f"prep with both cores busy (Prefect's temporary server): succeeded in {busy_prep:.1f} s")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
