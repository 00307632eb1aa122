"""L.A.Cosmic on one amplifier: astroflow's ``processing.lacosmic`` vs ``astroscrappy``, in one run.

    python benchmarks/bench_lacosmic.py [--rows 2048] [--cols 2080] [--hits 50 3000] [--repeat 3]

Makes (seeded, outside the timings) a frame in electrons like a reduced science amplifier of
``bench_calibrate.py --clean``: sky 800 e-, read noise 5 e-, 400 Gaussian stars (FWHM 3 px),
and for each ``--hits`` that many cosmic rays (single pixels and tracks of 2-6 pixels,
500-20000 e-), with a sprinkle of masked pixels. Runs ``astroscrappy.detect_cosmics`` and
``astroflow.processing.lacosmic.detect_cosmics`` with the same parameters (ccdproc's
defaults), alternately, ``--repeat`` times each, after one warm-up call (numba's compilation,
cached on disk afterwards), and prints the median wall times, their ratio, and whether the
masks and the cleaned frames are identical.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_frame(rows: int, cols: int, hits: int, seed: int = 27):
    """The seeded frame (float32 e-) and its input mask (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    light = np.full((rows, cols), 800.0, np.float32)
    yy, xx = np.mgrid[0:15, 0:15]
    sigma = 3.0 / 2.3548
    for _ in range(400):
        y, x = rng.uniform(10, rows - 10), rng.uniform(10, cols - 10)
        y0, x0 = int(y) - 7, int(x) - 7
        flux = rng.uniform(2e3, 2e5)
        light[y0 : y0 + 15, x0 : x0 + 15] += (
            flux
            / (2 * np.pi * sigma**2)
            * np.exp(-((yy + y0 - y) ** 2 + (xx + x0 - x) ** 2) / (2 * sigma**2))
        )
    frame = rng.poisson(light).astype(np.float32)
    frame += rng.normal(0.0, 5.0, (rows, cols)).astype(np.float32)
    for _ in range(hits):
        y, x = int(rng.integers(0, rows - 8)), int(rng.integers(0, cols - 8))
        dy, dx = (0, 1) if rng.random() < 0.5 else (1, 0)
        for k in range(int(rng.integers(1, 7))):
            frame[y + k * dy, x + k * dx] += rng.uniform(500, 20000)
    return frame, rng.random((rows, cols)) < 1e-4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--cols", type=int, default=2080)
    parser.add_argument("--hits", type=int, nargs="+", default=[50, 3000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import astroscrappy
    import numpy as np

    from astroflow.processing import lacosmic

    params = {"gain": 1.0, "readnoise": 5.0, "satlevel": 65000.0}
    params |= {"sigclip": 4.5, "sigfrac": 0.3, "objlim": 5.0, "niter": 4}
    print(f"one {args.rows}x{args.cols} amplifier, median of {args.repeat}")
    print("| hits | astroscrappy s | astroflow s | ratio | flagged pixels | identical |")
    print("|---|---|---|---|---|---|")
    for hits in args.hits:
        frame, inmask = make_frame(args.rows, args.cols, hits)
        lacosmic.detect_cosmics(frame[:200, :200], inmask[:200, :200], **params)  # compile
        theirs_s, ours_s = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            theirs = astroscrappy.detect_cosmics(
                frame, inmask=inmask, sepmed=True, cleantype="meanmask", **params
            )
            theirs_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            ours = lacosmic.detect_cosmics(frame, inmask, **params)
            ours_s.append(time.perf_counter() - start)
        same = np.array_equal(theirs[0], ours[0]) and np.array_equal(theirs[1], ours[1])
        a, b = statistics.median(theirs_s), statistics.median(ours_s)
        print(f"| {hits} | {a:.2f} | {b:.2f} | {a / b:.1f}x | {int(ours[0].sum())} | {same} |")


if __name__ == "__main__":
    main()
