"""Organiser benchmark: prepare a workspace of 20,000 synthetic raw frames.

    python benchmarks/bench_prepare.py [--frames 20000]

In one run: the floor (read every header with astropy, nothing else), a first prepare (the
``prepare-workspace`` flow on a warm Prefect API: classify, move, record, group, predict,
match, write SOFs), and a second prepare of the unchanged workspace. Prints times and ratios.
Targets (issue #4): first prepare <= 2x the floor; unchanged re-prepare <= 10% of the first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

from _prefect_env import quiet_ephemeral_prefect  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def make_frames(folder: Path, total: int) -> list[Path]:
    import numpy as np
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    per_night = [("BIAS", 0.0, "", 20), ("DARK", 60.0, "", 10), ("DARK", 300.0, "", 10)]
    per_night += [("FLAT", 2.0, f, 10) for f in ("B", "V", "R", "I")]
    science = max(1, total // 60 - sum(n for *_, n in per_night))
    per_night += [("LIGHT", 120.0, f, science // 4) for f in ("B", "V", "R", "I")]
    data = np.zeros((8, 8), np.int16)
    paths: list[Path] = []
    night = 0
    while len(paths) < total:
        mjd0 = 60000.2 + night
        for kind, exptime, filt, count in per_night:
            for i in range(count):
                if len(paths) >= total:
                    break
                path = folder / f"n{night:03d}_{kind.lower()}{filt}_{exptime:g}_{i:04d}.fits"
                hdr = fits.Header()
                hdr["IMAGETYP"] = kind
                hdr["EXPTIME"] = exptime
                hdr["MJD-OBS"] = mjd0 + i * 1e-4
                hdr["INSTRUME"] = "BENCHCAM"
                hdr["XBINNING"] = 1
                hdr["YBINNING"] = 1
                hdr["GAIN"] = 1.2
                hdr["READOUTM"] = "Fast"
                if filt:
                    hdr["FILTER"] = filt
                fits.PrimaryHDU(data, hdr).writeto(path)
                paths.append(path)
        night += 1
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/astroflow-bench-prepare"))
    args = parser.parse_args()
    quiet_ephemeral_prefect()
    sys.path.insert(0, str(ROOT))
    from astropy.io import fits

    source = args.workdir / f"frames-{args.frames}"
    if not source.exists() or len(list(source.iterdir())) < args.frames:
        shutil.rmtree(source, ignore_errors=True)
        make_frames(source, args.frames)
    ws = args.workdir / "workspace"
    shutil.rmtree(ws, ignore_errors=True)
    shutil.copytree(source, ws)
    paths = sorted(ws.glob("*.fits"))

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in paths:
            fits.getheader(p)
    floor = time.perf_counter() - t0

    from prefect import flow

    from astroflow.flows.organiser import prepare_workspace

    @flow
    def warm_up() -> None:
        pass

    warm_up()  # start the ephemeral API before timing
    t0 = time.perf_counter()
    first = prepare_workspace(str(ws))
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = prepare_workspace(str(ws))
    t_second = time.perf_counter() - t0
    print(f"{len(paths)} frames, {os.cpu_count()} CPUs")
    print(f"floor (astropy reads every header): {floor:.1f} s")
    print(
        f"first prepare: {t_first:.1f} s ({first.sets} sets, {first.products} products, "
        f"{first.sofs_written} SOFs) -> {t_first / floor:.2f}x the floor (target <= 2x)"
    )
    print(
        f"unchanged re-prepare: {t_second:.2f} s, {second.headers_read} headers read -> "
        f"{100 * t_second / t_first:.1f}% of the first (target <= 10%)"
    )


if __name__ == "__main__":
    main()
