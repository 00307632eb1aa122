"""Orchestration overhead of the cascade: a 200-product cascade of tiny frames.

    python benchmarks/bench_cascade.py [--nights 10]

Builds a workspace whose cascade has ~200 products (per night a bias, a dark and a flat set
and science frames), prepares it, then times the ``calibration-cascade`` flow on a warm
Prefect API. Overhead per task = (flow wall time - recipe compute / 2 threads) / tasks, and
the stricter (flow wall - recipe compute) / tasks. Target (issue #5): <= 50 ms per task.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from _prefect_env import quiet_ephemeral_prefect  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--science", type=int, default=17, help="science frames per night")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/astroflow-bench-cascade"))
    args = parser.parse_args()
    quiet_ephemeral_prefect()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from prefect import flow

    from astroflow.flows.cascade import calibration_cascade
    from astroflow.flows.organiser import prepare_workspace
    from tests.organiser_data import Frame, write_frame

    ws = args.workdir / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for night in range(args.nights):
        mjd = 61000.1 + night
        frames = [Frame(f"n{night}_b{i}.fits", "BIAS", 0.0, mjd + i * 1e-4) for i in range(3)]
        frames += [
            Frame(f"n{night}_d{i}.fits", "DARK", 60.0, mjd + 0.01 + i * 1e-4) for i in range(3)
        ]
        frames += [
            Frame(f"n{night}_f{i}.fits", "FLAT", 2.0, mjd + 0.02 + i * 1e-4, "R") for i in range(3)
        ]
        frames += [
            Frame(f"n{night}_s{i}.fits", "LIGHT", 60.0, mjd + 0.1 + i * 1e-3, "R")
            for i in range(args.science)
        ]
        for f in frames:
            write_frame(ws / f.name, f, rng, (16, 16))

    @flow
    def warm_up() -> None:
        pass

    warm_up()
    prep = prepare_workspace(str(ws))
    t0 = time.perf_counter()
    summary = calibration_cascade(str(ws))
    wall = time.perf_counter() - t0
    n = summary.tasks
    print(f"{prep.products} predicted products, {n} recipe tasks run, {os.cpu_count()} CPUs")
    print(f"flow wall {wall:.1f} s, recipe compute {summary.recipe_seconds:.1f} s (summed)")
    print(
        f"overhead per task: {(wall - summary.recipe_seconds / 2) / n * 1000:.0f} ms "
        f"(compute spread over 2 threads); strict {(wall - summary.recipe_seconds) / n * 1000:.0f}"
        " ms (target <= 50 ms)"
    )


if __name__ == "__main__":
    main()
