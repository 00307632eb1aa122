"""Ingest processing benchmark: astroflow vs toasty on the same synthetic files, in one run.

    python benchmarks/bench_ingest.py [--size 8000] [--fits-size 4096] [--workdir DIR]
                                      [--repeat 3] [--inputs jpeg,fits,fits-png]

Makes an 8000x8000 RGB JPEG and a 4096x4096 float32 FITS (seeded), then runs, each in its own
process so that peak RSS is per job:

* astroflow ``process_image`` (WCS check, tiling, thumbnail, WTML): PNG tiles for the JPEG;
  for the FITS file WWT's tiled FITS (``fits``, the default: float tiles, PNG preview) or,
  with ``fits_tiles: png``, 8-bit PNG tiles (``fits-png``);
* ``toasty tile-study`` followed by ``toasty cascade`` (the peer; for a FITS file it writes
  tiled FITS).

Two timings of each: **cold**, the wall time of the whole process (interpreter, imports,
work: one image per command, as a command line runs it) and **warm**, the work alone once the
modules are imported (what each further image costs a pipeline worker: a Prefect or Dask
worker process, or toasty's own ``pipeline process`` loop, imports once). Prints CPU time
(user + sys) and peak RSS, and the ratios. Each job runs ``--repeat`` times, the two tools in
turn, and the run of median wall time is reported (this 2-core VM's timings drift by 20 %
over minutes).
Targets (issue #26): tiled FITS >= 8x toasty cold, JPEG >= 20x cold (issue #17's: FITS as PNG
>= 3x), peak RSS no higher than toasty's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The work folder is prepared by the driver (prepare_work), outside the timed process, as the
# toasty output folder is: both jobs start from an image to tile and an empty output.
_ASTROFLOW = """
import importlib, sys, time
from astroflow.tasks.ingest_work import process_image
work, level = sys.argv[1], int(sys.argv[3])
for name in filter(None, sys.argv[5].split(",")):  # what the job imports on the way
    importlib.import_module(name)
start = time.perf_counter()
m = process_image("bench", work, "https://example.org/", png_level=level, fits_tiles=sys.argv[6])
print("WORK", time.perf_counter() - start)
"""

# toasty's command line, with the modules its commands import on the way imported first, so
# that WORK is the work alone.
_TOASTY = """
import sys, time
import numpy, PIL.Image, astropy.io.fits, astropy.wcs
import toasty.builder, toasty.image, toasty.merge, toasty.pyramid, toasty.study
from toasty.cli import entrypoint
start = time.perf_counter()
entrypoint(sys.argv[1:])
print("WORK", time.perf_counter() - start)
"""


def prepare_work(work: Path, image: Path, avm_json: str) -> None:
    """A work folder holding ``image`` as the fetch stage leaves it for the candidate
    ``bench``: the image, its candidate record and its download facts."""
    todo = work / "cache_todo" / "bench"
    shutil.rmtree(work, ignore_errors=True)
    todo.mkdir(parents=True)
    shutil.copyfile(image, todo / ("image" + "".join(image.suffixes)))
    avm = json.loads(avm_json) if avm_json != "null" else None
    cand = {
        "id": "bench",
        "source_type": "folder",
        "source_id": str(image),
        "image_url": str(image),
        "image_ext": image.suffix.lstrip("."),
        "title": "bench",
        "avm": avm,
    }
    (todo / "candidate.json").write_text(json.dumps(cand))
    # what the fetch stage records as it downloads (it hashes the bytes on the way in)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    facts = {"sha256": digest, "bytes": image.stat().st_size}
    (todo / "download.json").write_text(json.dumps(facts))


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
    lines = out.stdout.strip().splitlines()
    stats = json.loads(lines[-1])
    stats["work"] = next(float(x.split()[1]) for x in lines if x.startswith("WORK "))
    stats["wall"] = wall
    stats["cpu_total"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return stats


_KEEPER = """
import json, resource, subprocess, sys
cmd = json.loads(sys.argv[1])
r = subprocess.run(cmd, capture_output=True, text=True)
if r.returncode:
    sys.stderr.write(r.stderr); sys.exit(r.returncode)
sys.stdout.write(r.stdout)
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


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run of median wall time (its other figures with it: one real run, not a blend)."""
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def _toasty_job(image: Path, out: Path, label: str) -> dict[str, float]:
    extra = ["--placeholder-thumbnail"] if label.startswith("fits") else []  # toasty cannot
    # thumbnail a FITS image ("cannot thumbnail-ify non-RGB Image")
    t1 = _run(
        [sys.executable, "-c", _TOASTY, "tile-study", *extra, "--outdir", str(out), str(image)]
    )
    levels = max(int(p.name) for p in out.iterdir() if p.name.isdigit())
    t2 = _run([sys.executable, "-c", _TOASTY, "cascade", "--start", str(levels), str(out)])
    return {
        "wall": t1["wall"] + t2["wall"],
        "work": t1["work"] + t2["work"],
        "cpu": t1["cpu"] + t2["cpu"],
        "rss_mb": max(t1["rss_mb"], t2["rss_mb"]),
    }


# The modules astroflow imports only once it meets an image of the kind (imported before the
# warm timer starts, as toasty's are): astropy's FITS reader for a FITS file; a picture
# placed by its feed needs no astropy at all.
_LAZY_IMPORTS = {"fits": "astropy.io.fits", "fits-png": "astropy.io.fits", "jpeg": ""}


def _astroflow_job(
    image: Path, work: Path, avm_json: str, level: int, label: str
) -> dict[str, float]:
    prepare_work(work, image, avm_json)
    tiles = "png" if label == "fits-png" else "fits"
    script = [_ASTROFLOW, str(work), str(image), str(level), avm_json, _LAZY_IMPORTS[label], tiles]
    return _run([sys.executable, "-c", *script])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--fits-size", type=int, default=4096)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/astroflow-bench-ingest"))
    parser.add_argument("--levels", default="1", help="astroflow PNG zlib levels to measure")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each job (median)")
    parser.add_argument("--inputs", default="jpeg,fits,fits-png", help="which inputs to measure")
    args = parser.parse_args()
    try:
        import toasty  # noqa: F401
    except ImportError:
        raise SystemExit("toasty is not installed: pip install -e '.[bench]'") from None
    jpeg, fits_path, avm = make_inputs(args.workdir / "inputs", args.size, args.fits_size)
    print(
        f"# {os.cpu_count()} CPUs; inputs: {jpeg.name}, {fits_path.name}; "
        f"median of {args.repeat} runs of each job, the two tools in turn"
    )
    # Every run writes into a folder no run used before, and all are removed at the end: on
    # ext4, creating a file just after deleting many costs up to ~1 ms (the allocator skips
    # recently freed inodes), which would charge both tools for the benchmark's own clean-up.
    runs_dir = Path(tempfile.mkdtemp(prefix="runs-", dir=args.workdir))
    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    try:
        jobs = {
            "jpeg": (jpeg, json.dumps(avm)),
            "fits": (fits_path, "null"),
            "fits-png": (fits_path, "null"),
        }
        for label in args.inputs.split(","):
            image, avm_json = jobs[label]
            peer_runs: list[dict[str, float]] = []
            our_runs: dict[int, list[dict[str, float]]] = {level: [] for level in levels}
            for i in range(args.repeat):
                peer_runs.append(_toasty_job(image, runs_dir / f"toasty-{label}-{i}", label))
                for level in levels:
                    work = runs_dir / f"astroflow-{label}-{level}-{i}"
                    our_runs[level].append(_astroflow_job(image, work, avm_json, level, label))
            peer = _median_run(peer_runs)
            rows.append((label, "toasty tile-study + cascade", peer))
            for level in levels:
                ours = _median_run(our_runs[level])
                what = "tiled FITS" if label == "fits" else f"png level {level}"
                rows.append((label, f"astroflow process ({what})", ours))
                _print_ratio(label, level, peer, ours)
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    print("\n| input | job | cold wall s | warm work s | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for label, job, r in rows:
        print(
            f"| {label} | {job} | {r['wall']:.2f} | {r['work']:.2f} | {r['cpu']:.1f} "
            f"| {r['rss_mb']:.0f} |"
        )
    print(
        "\ntargets: tiled FITS >= 8x, JPEG >= 20x toasty cold (FITS as PNG >= 3x); "
        "peak RSS <= toasty's"
    )


def _print_ratio(label: str, level: int, peer: dict[str, float], ours: dict[str, float]) -> None:
    target = TARGETS[label]
    cold, warm = peer["wall"] / ours["wall"], peer["work"] / ours["work"]
    print(
        f"{label}: astroflow level {level}: {cold:.1f}x faster cold (whole process), "
        f"{warm:.1f}x warm (work alone), {peer['cpu'] / ours['cpu']:.1f}x less CPU, "
        f"peak RSS {ours['rss_mb']:.0f} MB vs {peer['rss_mb']:.0f} MB "
        f"({ours['rss_mb'] / peer['rss_mb']:.2f}x); target >= {target}x: "
        f"cold {'met' if cold >= target else 'NOT met'}, "
        f"warm {'met' if warm >= target else 'NOT met'}",
        flush=True,
    )


TARGETS = {"fits": 8.0, "fits-png": 3.0, "jpeg": 20.0}


if __name__ == "__main__":
    main()
