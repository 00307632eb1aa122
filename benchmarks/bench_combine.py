"""Frame-combining benchmark: astroflow vs ccdproc.combine vs the astropy reference, one run.

    python benchmarks/bench_combine.py [--frames 30] [--size 4096]

Writes ``--frames`` float32 FITS frames of ``--size`` squared (seeded noise plus cosmic rays),
then combines them into a sigma-clipped mean (3 sigma, median centre, MAD std, 3 iterations),
each peer in its own process so that peak RSS is per job:

* astroflow: ``tasks.cascade_work.combine`` over row bands read from disk (numba kernel);
* ccdproc.combine(..., method="average", sigma_clip=True, sigma_clip_func=np.ma.median,
  sigma_clip_dev_func=mad_std);
* astropy: sigma_clip(cube, sigma=3, maxiters=3, cenfunc="median", stdfunc="mad_std",
  axis=0).mean(axis=0).

Prints wall, CPU and peak RSS of each, the ratios, and the largest relative difference.
Targets (issue #5): >= 10x faster than ccdproc and >= 4x faster than astropy (wall), peak RSS
<= 1.5 GB, identical numbers (1e-5 relative).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

JOBS = {
    "astroflow": """
import sys, glob, numpy as np
from pathlib import Path
from astroflow.storage.organiser.frames import opened
from astroflow.tasks.cascade_work import combine
paths = sorted(Path(p) for p in glob.glob(sys.argv[1] + '/f*.fits'))
with opened(paths) as (frames, bad):
    out = combine(frames, frames[0].shape)
np.save(sys.argv[2], out)
""",
    "ccdproc": """
import sys, glob, warnings, numpy as np
warnings.simplefilter('ignore')
from astropy.stats import mad_std
import ccdproc
paths = sorted(glob.glob(sys.argv[1] + '/f*.fits'))
out = ccdproc.combine(paths, method='average', sigma_clip=True, sigma_clip_low_thresh=3,
                      sigma_clip_high_thresh=3, sigma_clip_func=np.ma.median,
                      sigma_clip_dev_func=mad_std, unit='adu', mem_limit=16e9)
np.save(sys.argv[2], np.asarray(out.data, dtype=np.float64))
""",
    "astropy": """
import sys, glob, warnings, numpy as np
warnings.simplefilter('ignore')
from astropy.io import fits
from astropy.stats import sigma_clip
paths = sorted(glob.glob(sys.argv[1] + '/f*.fits'))
cube = np.stack([fits.getdata(p) for p in paths])
ref = sigma_clip(cube, sigma=3, maxiters=3, cenfunc='median', stdfunc='mad_std', axis=0)
np.save(sys.argv[2], np.ma.filled(ref.mean(axis=0).astype(np.float64), np.nan))
""",
}

_KEEPER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2], sys.argv[3]], cwd=sys.argv[4])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({'rc': r.returncode, 'wall': time.perf_counter() - t,
                  'cpu': u.ru_utime + u.ru_stime, 'rss_mb': u.ru_maxrss / 1024}))
"""


def make_frames(folder: Path, n: int, size: int) -> None:
    import numpy as np
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    for i in range(n):
        path = folder / f"f{i:03d}.fits"
        if path.exists():
            continue
        data = rng.normal(1000.0, 10.0, (size, size)).astype(np.float32)
        ys = rng.integers(0, size, 2000)
        xs = rng.integers(0, size, 2000)
        data[ys, xs] += rng.uniform(200, 5000, 2000).astype(np.float32)  # cosmic rays
        fits.PrimaryHDU(data).writeto(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/astroflow-bench-combine"))
    parser.add_argument("--peers", default="astroflow,astropy,ccdproc")
    args = parser.parse_args()
    import numpy as np

    frames = args.workdir / f"{args.frames}x{args.size}"
    make_frames(frames, args.frames, args.size)
    # warm the numba cache so that compilation is not timed
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from processing.combine import clipped_mean;"
            "import numpy as np; clipped_mean(np.zeros((3,2,2),np.float32))",
        ],
        cwd=ROOT,
        check=True,
    )
    stats = {}
    outputs = {}
    for name in args.peers.split(","):
        out = args.workdir / f"{name}.npy"
        r = subprocess.run(
            [sys.executable, "-c", _KEEPER, JOBS[name], str(frames), str(out), str(ROOT)],
            capture_output=True,
            text=True,
        )
        result = json.loads(r.stdout.strip().splitlines()[-1])
        if result["rc"] != 0:
            raise SystemExit(f"{name} failed: {r.stderr[-2000:]}")
        stats[name] = result
        outputs[name] = np.load(out)
        print(
            f"{name}: wall {result['wall']:.1f} s, CPU {result['cpu']:.1f} s, peak RSS "
            f"{result['rss_mb']:.0f} MB",
            flush=True,
        )
    ours = stats["astroflow"]
    print(f"\n{args.frames} frames of {args.size}x{args.size} float32, {os.cpu_count()} CPUs")
    print("| job | wall s | CPU s | peak RSS MB |\n|---|---|---|---|")
    for name, r in stats.items():
        print(f"| {name} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rss_mb']:.0f} |")
    for name in stats:
        if name == "astroflow":
            continue
        ref = outputs[name]
        diff = np.nanmax(np.abs(outputs["astroflow"] - ref) / np.maximum(np.abs(ref), 1e-30))
        print(
            f"astroflow vs {name}: {stats[name]['wall'] / ours['wall']:.1f}x faster (wall), "
            f"{stats[name]['cpu'] / ours['cpu']:.1f}x less CPU, "
            f"{stats[name]['rss_mb'] / ours['rss_mb']:.1f}x less memory; max relative "
            f"difference {diff:.2e}"
        )
    print("targets: >= 10x ccdproc, >= 4x astropy (wall); peak RSS <= 1536 MB; diff <= 1e-5")


if __name__ == "__main__":
    main()
