"""The solve step's time per frame: a night of 10 frames solved by astrometry.net.

    python benchmarks/bench_solve.py [--size 1024] [--frames 10] [--workdir DIR]

Builds (outside the timing) a seeded catalogue of stars around RA 150, Dec 2 and index files
from it with astrometry.net's own ``build-astrometry-index`` (quads of 4-16 arcmin), renders
``frames`` frames of ``size`` x ``size`` pixels at 2 arcsec/pixel (34 arcmin for 1024) at
pointings a few arcmin apart, extracts their sources with sep as the reduce step does, then
solves each through astroflow's backend twice: with the header's hint (position within 2 deg,
scale within 10 %, as a header 5 arcmin off gives) and blind. Prints the median, lowest and
highest wall time per frame and the median RMS of the matched stars.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/astroflow-bench-solve"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from astropy.table import Table

    from astroflow.models.rules import Solve
    from astroflow.processing.astrometry import astrometric_rms, solution_wcs, solve_hint
    from astroflow.processing.image_quality import measure_frame
    from astroflow.processing.synthetic import render_stars, star_catalogue
    from astroflow.storage.astrometry import AstrometryNet, SolveHint, index_files

    ra, dec, scale = 150.0, 2.0, 2.0 / 3600
    index = args.workdir / "index"
    index.mkdir(parents=True, exist_ok=True)
    catalogue = star_catalogue(ra, dec, 1.0, 6000)
    if len(index_files([index])) < 4:
        Table(catalogue).write(args.workdir / "catalogue.fits", overwrite=True)
        t0 = time.perf_counter()
        for p in (2, 3, 4, 5):
            subprocess.run(
                ["build-astrometry-index", "-i", str(args.workdir / "catalogue.fits"),
                 "-o", str(index / f"index-bench-{p:02d}.fits"), "-P", str(p), "-S", "MAG",
                 "-A", "RA", "-D", "DEC", "-I", str(3000 + p), "-E"],
                check=True, capture_output=True,
            )  # fmt: skip
        print(f"built 4 index files in {time.perf_counter() - t0:.1f} s")
    solver = AstrometryNet(index_files([index]), "solve-field")
    rng = np.random.default_rng(7)
    size = args.size
    timings: dict[str, list[float]] = {"hint": [], "blind": []}
    rms: list[float] = []
    for k in range(args.frames):
        centre = (ra + rng.uniform(-0.15, 0.15), dec + rng.uniform(-0.15, 0.15))
        t = np.radians(rng.uniform(0, 360))
        header = {
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": centre[0],
            "CRVAL2": centre[1], "CRPIX1": (size + 1) / 2, "CRPIX2": (size + 1) / 2,
            "CD1_1": -scale * np.cos(t), "CD1_2": scale * np.sin(t),
            "CD2_1": scale * np.sin(t), "CD2_2": scale * np.cos(t),
        }  # fmt: skip
        image = 300.0 + render_stars(catalogue, header, (size, size))
        image = (rng.poisson(image * 1.5) / 1.5 + rng.normal(0, 10, image.shape)).astype(np.float32)
        _, sources = measure_frame(image, np.zeros(image.shape, bool), fit=False)
        off = {**header, "CRVAL2": centre[1] + 5 / 60}
        for mode, hint in (
            ("hint", SolveHint(**solve_hint(off, size, size, Solve()))),
            ("blind", SolveHint()),
        ):
            result = solver.solve(
                sources[:300], size, size, hint, time_limit_s=60, sip_order=0, label=f"f{k}"
            )
            if result is None:
                print(f"frame {k} ({mode}): not solved")
                continue
            timings[mode].append(result.seconds)
            if mode == "hint":
                wcs = solution_wcs(result.header, 0)
                rms.append(astrometric_rms(wcs, result.field_xy, result.index_radec))
    print(
        f"\n{args.frames} frames of {size}x{size} at 2 arcsec/pixel, {len(catalogue['RA'])} stars"
    )
    print("| solve | solved | median s | lowest s | highest s |")
    print("|---|---|---|---|---|")
    for mode, values in timings.items():
        if values:
            print(
                f"| {mode} | {len(values)}/{args.frames} | {statistics.median(values):.2f} | "
                f"{min(values):.2f} | {max(values):.2f} |"
            )
    if rms:
        print(f"\nmedian RMS of matched stars (hint): {statistics.median(rms):.3f} arcsec")


if __name__ == "__main__":
    main()
