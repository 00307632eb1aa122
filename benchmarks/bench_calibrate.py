"""Calibration of real-sized multi-extension frames: astroflow vs ccdproc, in one run.

    python benchmarks/bench_calibrate.py [--rows 2048] [--cols 2048] [--science 10]
                                         [--repeat 1] [--workdir DIR] [--clean]

Makes (seeded, outside the timed jobs) a night of a two-amplifier camera: every frame holds
two extensions of ``rows`` x ``cols`` data pixels plus a 32-column overscan strip (together a
2048 x 4096 detector by default), uint16, each amplifier with its own BIASSEC, TRIMSEC, GAIN
and RDNOISE; 5 biases, 5 flats and ``science`` science frames. Then runs, each in its own
process so that peak RSS is the job's own:

* astroflow: prepare (classify, plan, SOFs) and the cascade's recipe bodies (two at a time,
  as the cascade's thread runner does), without the Prefect API: overscan, trim, gain, master
  bias, master flat, reduced frames with variance and mask, QC, provenance;
* ccdproc and astropy, the same steps: ``subtract_overscan(median=True)``, ``trim_image``,
  ``gain_correct``, astropy's ``sigma_clip`` (3 sigma about the median, MAD std, 3
  iterations: astroflow's combine; ccdproc's ``Combiner`` clips once per call and differs on
  ~10 % of pixels of a 5-frame stack) then the mean, flats scaled to a common median,
  ``subtract_bias``, ``create_deviation``, ``flat_correct``, written as FITS with their
  uncertainty.

With ``--clean`` (issue #27) the science frames also hold ~400 stars (Gaussian, FWHM 3 px)
and ~1500 cosmic-ray hits (single pixels and short tracks) per amplifier, and both sides
clean them: astroflow's reduce with ``cosmic_rays`` (L.A.Cosmic through astroscrappy) and
its image-quality QC (sep: sources, FWHM, ellipticity, sky); the peer with
``ccdproc.cosmicray_lacosmic`` (the same astroscrappy, the same parameters) after its reduce
chain. The cosmic-ray masks are compared too.

Prints wall time and peak RSS of both, their ratios, and how far the reduced frames differ.
Targets (issue #24): astroflow >= 5x faster, peak RSS no higher, the same numbers; with
``--clean`` (issue #27): >= 3x faster, peak RSS no higher.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OVERSCAN = 32

# Runs one job in a child and reports its wall time and peak RSS (ru_maxrss of children).
_KEEPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
wall = time.perf_counter() - start
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"ok": done.returncode == 0, "wall": wall, "rss_mb": u.ru_maxrss / 1024}))
"""

_ASTROFLOW = """
import sys
from concurrent.futures import ThreadPoolExecutor
from astroflow.models.errors import ErrorStack
from astroflow.models.rules import load_rules
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.cascade_service import CascadePlan
from astroflow.tasks.cascade_work import run_recipe
from astroflow.tasks import organiser_work as work

ws = Workspace.open(sys.argv[1], writable=True)
rules_path = sys.argv[2]
rules = load_rules(rules_path)
session = work.begin_prepare(ws.ref, rules_path, False)
work.organise_new_frames(ws.ref, rules)
work.predict(ws.ref, rules)
work.write_session_sofs(ws.ref, rules, session)
plan = CascadePlan(ws, session, False, None)
with ThreadPoolExecutor(2) as pool:
    for rules, recipe in plan.levels:
        inputs = plan.level(rules, recipe, work.refresh_session_sofs(ws.ref, plan.rules, session))
        results = dict(zip([i.product for i in inputs], pool.map(run_recipe, inputs)))
        plan.record(inputs, results, ErrorStack())
failed = [o.product for o in plan.outcomes if o.failed or o.kind == "incomplete"]
assert not failed, failed
"""

_CCDPROC = """
import sys
from pathlib import Path
import astropy.units as u
import ccdproc
import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.stats import sigma_clip

src, out = Path(sys.argv[1]), Path(sys.argv[2])
clean = sys.argv[3:] == ["clean"]
out.mkdir(parents=True, exist_ok=True)
frames = sorted(src.glob("*.fits"))
kind = {p: fits.getheader(p)["IMAGETYP"] for p in frames}


def clipped_mean(ccds, scale=None):
    # astroflow's combine: astropy's sigma_clip (3 sigma about the median, MAD std, 3
    # iterations), then the mean (ccdproc's Combiner clips differently: one pass per call)
    stack = np.stack([c.data * (scale(c.data) if scale else 1.0) for c in ccds])
    clipped = sigma_clip(stack, sigma=3, maxiters=3, cenfunc="median", stdfunc="mad_std",
                         axis=0)
    return CCDData(np.ma.filled(clipped.mean(axis=0), np.nan), unit=ccds[0].unit)

for amp in ("AMP1", "AMP2"):
    def pre(path):
        ccd = CCDData.read(path, hdu=amp, unit="adu")
        h = ccd.header
        ccd = ccdproc.subtract_overscan(ccd, fits_section=h["BIASSEC"], median=True,
                                        overscan_axis=1)
        ccd = ccdproc.trim_image(ccd, fits_section=h["TRIMSEC"])
        ccd = ccdproc.gain_correct(ccd, h["GAIN"] * u.electron / u.adu)
        return ccd, h["RDNOISE"] * u.electron
    bias = clipped_mean([pre(p)[0] for p in frames if kind[p] == "bias"])
    flats = [ccdproc.subtract_bias(pre(p)[0], bias) for p in frames if kind[p] == "flat"]
    flat = clipped_mean(flats, scale=lambda a: 1.0 / np.ma.median(a))
    flat.data = flat.data / np.median(flat.data)
    for p in frames:
        if kind[p] != "object":
            continue
        ccd, noise = pre(p)
        ccd = ccdproc.subtract_bias(ccd, bias)
        ccd = ccdproc.create_deviation(ccd, gain=1.0 * u.dimensionless_unscaled,
                                       readnoise=noise, disregard_nan=True)
        ccd = ccdproc.flat_correct(ccd, flat, norm_value=1)
        if clean:  # astroflow's defaults, which are ccdproc's
            ccd = ccdproc.cosmicray_lacosmic(
                ccd, sigclip=4.5, sigfrac=0.3, objlim=5.0, niter=4, readnoise=noise.value,
                gain=1.0, satlevel=65000.0 * fits.getheader(p, amp)["GAIN"],
            )
        ccd.write(out / f"{p.stem}_{amp}.fits", overwrite=True)
"""


def make_night(folder: Path, rows: int, cols: int, science: int, clean: bool = False) -> None:
    """The seeded raw night (see the module docstring); ``clean``: stars and cosmic rays on
    the science frames."""
    import numpy as np
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(24)
    width = cols + OVERSCAN
    amps = (
        ("AMP1", f"[{cols + 1}:{width},1:{rows}]", f"[1:{cols},1:{rows}]", 1.5, 4.0),
        ("AMP2", f"[1:{OVERSCAN},1:{rows}]", f"[{OVERSCAN + 1}:{width},1:{rows}]", 2.2, 6.0),
    )
    yy = np.arange(rows, dtype=np.float32)[:, None]
    xx = np.arange(width, dtype=np.float32)[None, :]
    pattern = 1.0 - 0.1 * ((xx - width / 2) ** 2 + (yy - rows / 2) ** 2) / (rows * width)

    # ~400 stars per amplifier (Gaussian, FWHM 3 px), the same on every science frame
    stars = np.zeros((rows, width), np.float32)
    sigma = 3.0 / 2.3548
    for _ in range(800):
        y, x = rng.uniform(10, rows - 10), rng.uniform(10, width - 10)
        y0, x0 = int(y), int(x)
        yy_, xx_ = np.mgrid[y0 - 7 : y0 + 8, x0 - 7 : x0 + 8]
        flux = rng.uniform(2e3, 2e5)
        stars[y0 - 7 : y0 + 8, x0 - 7 : x0 + 8] += (
            flux
            / (2 * np.pi * sigma**2)
            * np.exp(-((yy_ - y) ** 2 + (xx_ - x) ** 2) / (2 * sigma**2))
        )

    def hits(electrons: np.ndarray) -> None:
        """~3000 cosmic rays: single pixels and tracks of 2-6 pixels, 500-20000 e-."""
        for _ in range(3000):
            y, x = int(rng.integers(2, rows - 8)), int(rng.integers(2, width - 8))
            length = int(rng.integers(1, 7))
            dy, dx = (0, 1) if rng.random() < 0.5 else (1, 0)
            for k in range(length):
                electrons[y + k * dy, x + k * dx] += rng.uniform(500, 20000)

    def frame(kind: str, n: int, exptime: float, signal: float, mjd: float) -> None:
        primary = fits.Header()
        primary.update({"IMAGETYP": kind, "EXPTIME": exptime, "FILTER": "R"})
        primary.update({"INSTRUME": "TWOAMP", "MJD-OBS": mjd})
        hdus: list = [fits.PrimaryHDU(header=primary)]
        for amp, (name, biassec, trimsec, gain, noise) in enumerate(amps):
            level = (400.0 + 50 * amp + 3.0 * yy / rows).astype(np.float32)
            adu = np.broadcast_to(level, (rows, width)).copy()
            adu += rng.normal(0.0, noise / gain, (rows, width)).astype(np.float32)
            if signal:
                light = signal * pattern
                if clean and kind == "object":
                    light = light + stars
                electrons = rng.poisson(light).astype(np.float32)
                if clean and kind == "object":
                    hits(electrons)
                data = slice(0, cols) if amp == 0 else slice(OVERSCAN, width)
                adu[:, data] += electrons[:, data] / gain
            header = fits.Header()
            header.update({"BIASSEC": biassec, "TRIMSEC": trimsec, "GAIN": gain})
            header.update({"RDNOISE": noise, "SATURATE": 65000})
            hdus.append(fits.ImageHDU(np.round(adu).astype(np.uint16), header, name=name))
        fits.HDUList(hdus).writeto(folder / f"{kind}_{n:02d}.fits", overwrite=True)

    for n in range(5):
        frame("bias", n, 0.0, 0.0, 61050.10 + n * 1e-3)
        frame("flat", n, 5.0, 20000.0, 61050.12 + n * 1e-3)
    for n in range(science):
        frame("object", n, 60.0, 800.0, 61050.20 + n * 1e-3)


def rules_without_darks(folder: Path, clean: bool = False) -> Path:
    """``iraf-ccd`` with no dark recipe (the benchmark's camera has no dark frames) and no
    image-quality QC (the same steps as the ccdproc script); ``clean``: with cosmic rays
    (the defaults: ccdproc's) and the image-quality QC."""
    import yaml

    from astroflow.models.rules import RULESETS_DIR

    data = yaml.safe_load((RULESETS_DIR / "iraf-ccd.yaml").read_text())
    data["name"] = "iraf-ccd-nodark"
    data["recipes"] = [r for r in data["recipes"] if r["name"] != "mdark"]
    for recipe in data["recipes"]:
        recipe["needs"] = [n for n in recipe.get("needs", []) if n["recipe"] != "mdark"]
        if recipe["name"] == "reduce":
            recipe["image_quality"] = clean  # the plain ccdproc script measures none
            if clean:
                recipe["cosmic_rays"] = {}
    path = folder / "iraf-ccd-nodark.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _KEEPER, code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise SystemExit(f"job failed:\n{done.stderr[-3000:]}")
    return result


def compare(workspace: Path, ccdproc_out: Path) -> tuple[float, float, float | None]:
    """Largest relative difference of the reduced pixels (cosmic-ray pixels left out: ccdproc
    replaces them, astroflow flags them), the share beyond 1e-5, and (when both looked for
    cosmic rays) the share of pixels whose cosmic-ray flag differs."""
    import numpy as np
    from astropy.io import fits

    worst, beyond, total, flags = 0.0, 0, 0, 0
    cosmics = False
    for ours in sorted((workspace / "sessions").rglob("object_*_RED.fits")):
        with fits.open(ours) as hdul:
            planes = {(h.name, h.header.get("AF_OF")): h for h in hdul}
            for amp in ("AMP1", "AMP2"):
                a = hdul[amp, 1].data.astype(np.float64)
                theirs = ccdproc_out / f"{ours.stem.removesuffix('_RED')}_{amp}.fits"
                with fits.open(theirs) as peer:
                    b = peer[0].data
                    rel = np.abs(a - b) / np.maximum(np.abs(b), 1.0)
                    if "MASK" in peer:  # hits: flagged by astroflow, replaced by ccdproc
                        cosmics = True
                        ours_cr = (planes["MASK", f"{amp},1"].data & 8) != 0
                        flags += int(np.count_nonzero(ours_cr != (peer["MASK"].data != 0)))
                        rel[ours_cr] = 0.0
                    worst = max(worst, float(np.nanmax(rel)))
                    beyond += int(np.count_nonzero(rel > 1e-5))
                    total += rel.size
    return worst, beyond / max(total, 1), (flags / max(total, 1) if cosmics else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--cols", type=int, default=2048, help="data columns per amplifier")
    parser.add_argument("--science", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/astroflow-bench-calibrate"))
    parser.add_argument(
        "--clean", action="store_true", help="stars and cosmic rays, cleaned by both (#27)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    raw = args.workdir / ("raw-clean" if args.clean else "raw")
    if not raw.is_dir() or len(list(raw.glob("*.fits"))) != 10 + args.science:
        shutil.rmtree(raw, ignore_errors=True)
        t0 = time.perf_counter()
        make_night(raw, args.rows, args.cols, args.science, args.clean)
        print(f"made {10 + args.science} frames in {time.perf_counter() - t0:.0f} s")
    rules = rules_without_darks(args.workdir, args.clean)
    ours, peer = [], []
    for k in range(args.repeat):
        ws = args.workdir / f"ws{k}"
        out = args.workdir / f"ccdproc{k}"
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        ws.mkdir()
        for path in raw.glob("*.fits"):
            shutil.copy(path, ws / path.name)
        ours.append(run(_ASTROFLOW, str(ws), str(rules)))
        peer.append(run(_CCDPROC, str(raw), str(out), *(["clean"] if args.clean else [])))
    a = sorted(ours, key=lambda r: r["wall"])[len(ours) // 2]
    p = sorted(peer, key=lambda r: r["wall"])[len(peer) // 2]
    worst, share, flags = compare(args.workdir / "ws0", args.workdir / "ccdproc0")
    frames = 10 + args.science
    print(
        f"\n{frames} frames of 2 x {args.rows}x{args.cols + OVERSCAN} uint16 "
        f"({args.science} science), median of {args.repeat}"
    )
    print("| tool | wall s | peak RSS MB |")
    print("|---|---|---|")
    print(f"| astroflow | {a['wall']:.1f} | {a['rss_mb']:.0f} |")
    print(f"| ccdproc | {p['wall']:.1f} | {p['rss_mb']:.0f} |")
    target = ">= 3x" if args.clean else ">= 5x"
    print(
        f"\nastroflow {p['wall'] / a['wall']:.1f}x faster, peak RSS "
        f"{a['rss_mb'] / p['rss_mb']:.2f}x ccdproc's (targets: {target}, <= 1x)"
    )
    print(
        f"reduced frames: largest relative difference {worst:.2g}, "
        f"{share:.2%} of pixels beyond 1e-5"
    )
    if flags is not None:
        print(f"cosmic-ray masks: {flags:.4%} of pixels flagged by one side only")


if __name__ == "__main__":
    main()
