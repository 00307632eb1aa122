"""Ingest processing benchmark: astroflow vs toasty on the same synthetic files, in one run.

    python benchmarks/bench_ingest.py [--size 8000] [--fits-size 4096] [--workdir DIR]

Makes an 8000x8000 RGB JPEG and a 4096x4096 float32 FITS (seeded), then runs, each in its own
process so that peak RSS is per job:

* astroflow ``process_image`` (WCS check, tiling, PNG tiles, thumbnail, WTML);
* ``toasty tile-study`` followed by ``toasty cascade`` (the peer).

Prints wall time, CPU time (user + sys) and peak RSS for each, and the ratios.
Targets (issue #3): astroflow >= 5x faster than toasty for the full pyramid (wall), peak RSS no
higher than toasty's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_ASTROFLOW = """
import json, sys, shutil
from pathlib import Path
from astroflow.tasks.ingest_work import process_image
work, image, level = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
todo = work / "cache_todo" / "bench"
shutil.rmtree(work, ignore_errors=True)
todo.mkdir(parents=True)
shutil.copyfile(image, todo / ("image" + "".join(image.suffixes)))
avm = json.loads(sys.argv[4]) if sys.argv[4] != "null" else None
cand = {"id": "bench", "source_type": "folder", "source_id": str(image), "image_url": str(image),
        "image_ext": image.suffix.lstrip("."), "title": "bench", "avm": avm}
(todo / "candidate.json").write_text(json.dumps(cand))
m = process_image("bench", str(work), "https://example.org/", png_level=level)
print(m.tile_count)
"""


def _run(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # Each job in a fresh child of a fresh "time keeper" so ru_maxrss is that job's peak.
    wrapper = [sys.executable, "-c", _KEEPER, json.dumps(cmd)]
    out = subprocess.run(wrapper, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed:\n{out.stderr[-3000:]}")
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    stats["wall"] = wall
    stats["cpu_total"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return stats


_KEEPER = """
import json, resource, subprocess, sys
cmd = json.loads(sys.argv[1])
r = subprocess.run(cmd, capture_output=True, text=True)
if r.returncode:
    sys.stderr.write(r.stderr); sys.exit(r.returncode)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"cpu": u.ru_utime + u.ru_stime, "rss_mb": u.ru_maxrss / 1024}))
"""


def make_inputs(folder: Path, size: int, fits_size: int) -> tuple[Path, Path, dict]:
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    jpeg = folder / f"synthetic-{size}.jpg"
    fits_path = folder / f"synthetic-{fits_size}.fits"
    rng = np.random.default_rng(42)
    if not jpeg.exists():
        # Smooth structure plus noise: compresses like a real astrophoto, not like pure noise.
        yy, xx = np.mgrid[0:size:8, 0:size:8]
        base = np.stack(
            [np.sin(xx / 300.0) * 60 + 90, np.cos(yy / 200.0) * 50 + 80, (xx + yy) % 255 * 0.3],
            axis=-1,
        )
        big = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)[:size, :size]
        big = np.clip(big + rng.normal(0, 12, big.shape), 0, 255).astype(np.uint8)
        Image.fromarray(big).save(jpeg, "JPEG", quality=90)
        del big
    if not fits_path.exists():
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [83.8, -5.4]
        w.wcs.crpix = [fits_size / 2, fits_size / 2]
        w.wcs.cdelt = [-1e-4, 1e-4]
        data = rng.normal(1000, 30, (fits_size, fits_size)).astype(np.float32)
        fits.PrimaryHDU(data, header=w.to_header()).writeto(fits_path)
    avm = {
        "wcs_projection": "TAN",
        "wcs_reference_value": [83.8, -5.4],
        "wcs_reference_pixel": [size / 2, size / 2],
        "wcs_reference_dimension": [size, size],
        "wcs_scale": [-1e-4, 1e-4],
        "wcs_rotation": 0.0,
    }
    return jpeg, fits_path, avm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--fits-size", type=int, default=4096)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/astroflow-bench-ingest"))
    parser.add_argument("--levels", default="1", help="astroflow PNG zlib levels to measure")
    args = parser.parse_args()
    toasty = shutil.which("toasty")
    if toasty is None:
        raise SystemExit("toasty is not installed: pip install -e '.[bench]'")
    jpeg, fits_path, avm = make_inputs(args.workdir / "inputs", args.size, args.fits_size)
    print(f"# {os.cpu_count()} CPUs; inputs: {jpeg.name}, {fits_path.name}")
    rows = []
    for label, image, avm_json in (("jpeg", jpeg, json.dumps(avm)), ("fits", fits_path, "null")):
        out = args.workdir / "toasty-out"
        shutil.rmtree(out, ignore_errors=True)
        extra = ["--placeholder-thumbnail"] if label == "fits" else []  # toasty cannot
        # thumbnail a FITS image ("cannot thumbnail-ify non-RGB Image")
        t1 = _run([toasty, "tile-study", *extra, "--outdir", str(out), str(image)])
        levels = max(int(p.name) for p in out.iterdir() if p.name.isdigit())
        t2 = _run([toasty, "cascade", "--start", str(levels), str(out)])
        peer = {
            "wall": t1["wall"] + t2["wall"],
            "cpu": t1["cpu"] + t2["cpu"],
            "rss_mb": max(t1["rss_mb"], t2["rss_mb"]),
        }
        rows.append((label, "toasty tile-study + cascade", peer))
        for level in [int(x) for x in args.levels.split(",")]:
            ours = _run(
                [
                    sys.executable,
                    "-c",
                    _ASTROFLOW,
                    str(args.workdir / "af"),
                    str(image),
                    str(level),
                    avm_json,
                ]
            )
            rows.append((label, f"astroflow process (png level {level})", ours))
            print(
                f"{label}: astroflow level {level}: {peer['wall'] / ours['wall']:.1f}x faster "
                f"(wall), {peer['cpu'] / ours['cpu']:.1f}x less CPU, peak RSS "
                f"{ours['rss_mb']:.0f} MB vs {peer['rss_mb']:.0f} MB "
                f"({ours['rss_mb'] / peer['rss_mb']:.2f}x)",
                flush=True,
            )
    print("\n| input | job | wall s | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for label, job, r in rows:
        print(f"| {label} | {job} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rss_mb']:.0f} |")
    print("\ntargets: wall ratio >= 5x on the JPEG pyramid; peak RSS <= toasty's")


if __name__ == "__main__":
    main()
