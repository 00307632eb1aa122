"""The calibration cascade end to end on a synthetic, seeded workspace (real Prefect, SQLite)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import sigma_clip

from astroflow.flows.cascade import calibration_cascade
from astroflow.flows.organiser import prepare_workspace
from astroflow.storage.database import Database
from astroflow.storage.organiser import catalog
from tests.lossy_api import LossyApi
from tests.organiser_data import make_workspace

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
SHAPE = (48, 40)


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    prepare_workspace(str(ws))
    return ws


def _product(ws: Path, prefix: str, session: str = "base") -> Path:
    found = sorted((ws / "sessions" / session / "reduced").rglob(f"{prefix}*.fits"))
    assert found, prefix
    return found[0]


def test_a_lost_api_response_does_not_fail_the_cascade(
    prepared: Path, prefect_harness: LossyApi
) -> None:
    """The CI failure of stop 21: the API committed a COMPLETED transition but its answer was
    lost; the cascade's value must still reach its caller, and nothing be redone."""
    with prefect_harness.losing() as dropped:
        summary = calibration_cascade(str(prepared))
    assert len(dropped) == 2  # calibration-cascade and its cascade-levels subflow
    assert len(summary.made) == 12
    assert summary.failed == ()


def test_masters_recover_the_truth_and_match_astropy(prepared: Path) -> None:
    summary = calibration_cascade(str(prepared))
    assert len(summary.made) == 12
    assert summary.failed == ()
    bias_path = _product(prepared, "20260109_MBIAS")
    bias = fits.getdata(bias_path)
    header = fits.getheader(bias_path)
    assert float(np.median(bias)) == pytest.approx(1000.0, abs=2.0)  # bias level
    assert header["QCRON"] == pytest.approx(10.0, rel=0.15)  # read noise 10 ADU
    assert header["AF_RECIP"] == "mbias"
    assert header["AF_NIN"] == 5
    assert any("n1_bias_0.fits" in h for h in header["HISTORY"])
    # Same inputs through astropy's reference: equal within 1e-5 relative.
    raws = np.stack(
        [fits.getdata(p) for p in sorted((prepared / "raw" / "2026-01-09").glob("n1_bias_*.fits"))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sigma_clip(
            raws, sigma=3, maxiters=3, cenfunc="median", stdfunc="mad_std", axis=0
        ).mean(axis=0)
    np.testing.assert_allclose(bias, np.ma.filled(ref, np.nan), rtol=1e-5)
    dark = fits.getdata(_product(prepared, "20260109_MDARK_1x1_60s"))
    assert float(np.median(dark)) == pytest.approx(0.5, abs=0.1)  # 0.5 ADU/s dark current
    flat = fits.getdata(_product(prepared, "20260109_MFLAT_1x1_R"))
    assert float(np.median(flat)) == pytest.approx(1.0, abs=1e-6)
    h, w = SHAPE
    assert flat[h // 2, w // 2] > flat[0, 0]  # vignetting recovered: centre brighter
    sci_path = _product(prepared, "n1_sciR_0_RED")
    with fits.open(sci_path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "VARIANCE", "MASK"]
        sky = float(np.median(hdul[0].data))
        assert sky == pytest.approx(500.0, rel=0.05)  # flat-fielded sky level recovered
        assert (hdul["VARIANCE"].data > 0).all()
        assert hdul[0].header["OBJECT"] == "M42"  # raw header (and WCS) kept
    qc = catalog.qc_rows(Database(prepared), "base")
    assert {q.qc_name for q in qc if q.recipe == "mflat"} >= {"mean", "cold_fraction"}


def test_rerun_skips_and_overwrite_redoes(prepared: Path) -> None:
    calibration_cascade(str(prepared))
    again = calibration_cascade(str(prepared))
    assert again.made == ()
    assert len(again.skipped) == 12
    forced = calibration_cascade(str(prepared), overwrite=True, recipes=["mbias"])
    assert len(forced.made) == 2
    # an input changed since the product was made counts as not existing
    raw = prepared / "raw" / "2026-01-10" / "n2_bias_0.fits"
    with fits.open(raw, mode="update") as hdul:
        hdul[0].data = hdul[0].data + 1.0
    changed = calibration_cascade(str(prepared), recipes=["mbias"])
    assert changed.made == ("20260110_MBIAS_1x1_011df1",)
    assert changed.skipped == ("20260109_MBIAS_1x1_4178e0",)


def test_failed_flat_is_replaced_by_neighbouring_night(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    for path in ws.glob("n1_flatR_*.fits"):  # dead region in night 1's R flats
        with fits.open(path, mode="update") as hdul:
            hdul[0].data[:20, :20] *= 0.05
    prepare_workspace(str(ws))
    summary = calibration_cascade(str(ws))
    bad_flat = next(n for n in summary.failed if "MFLAT_1x1_R" in n)
    assert bad_flat.startswith("20260109")
    status = catalog.status_rows(Database(ws), "base")[bad_flat]
    assert status.status == "fail"
    assert "cold_fraction" in status.message
    assert status.inputs  # the fingerprint is a column, not text in the message
    assert not status.claimed
    assert summary.reasons[bad_flat].startswith("QC failed: ")
    assert "cold_fraction=" in summary.reasons[bad_flat]
    flagged = fits.getheader(_product(ws, bad_flat))  # the product says so itself
    assert flagged["AF_QC"] == "FAIL"
    assert any(str(h).startswith("QC FAIL: cold_fraction=") for h in flagged["HISTORY"])
    assert fits.getheader(_product(ws, "20260110_MFLAT_1x1_R"))["AF_QC"] == "PASS"
    assert "[inputs" not in summary.reasons[bad_flat]
    sof = (ws / "sessions" / "base" / "sof" / "n1_sciR_0_RED.sof").read_text()
    assert "# SUBSTITUTED: 20260110_MFLAT_1x1_R" in sof
    assert f"replaces {bad_flat} (failed)" in sof
    assert "n1_sciR_0_RED" in summary.made  # completed with the neighbour's flat
    assert any("n1_sciR_0_RED" in s for s in summary.substitutions)
    with fits.open(_product(ws, "n1_sciR_0_RED")) as hdul:
        assert any("substituted" in h for h in hdul[0].header["HISTORY"])


def test_corrupt_frame_in_a_set_is_reported_and_set_combines(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    prepare_workspace(str(ws))
    victim = ws / "raw" / "2026-01-09" / "n1_bias_2.fits"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 3000])  # data truncated, header intact
    prepare_workspace(str(ws))  # size changed: header re-read, still a bias
    summary = calibration_cascade(str(ws), recipes=["mbias"])
    assert "20260109_MBIAS_1x1_4178e0" in summary.made
    header = fits.getheader(_product(ws, "20260109_MBIAS"))
    assert header["AF_NIN"] == 4


def test_wrong_shaped_frame_is_dropped_like_a_truncated_one(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    prepare_workspace(str(ws))
    for victim in ("n1_bias_2.fits", "n1_dark60_1.fits"):
        path = next(ws.rglob(victim))
        with fits.open(path) as hdul:
            header = hdul[0].header.copy()
            data = hdul[0].data
        wider = np.zeros((SHAPE[0], SHAPE[1] + 8), data.dtype)
        wider[:, : SHAPE[1]] = data
        fits.PrimaryHDU(wider, header).writeto(path, overwrite=True)
    prepare_workspace(str(ws))
    summary = calibration_cascade(str(ws), recipes=["mbias", "mdark"])
    # five biases: the odd one is dropped, the master made of four
    assert "20260109_MBIAS_1x1_4178e0" in summary.made
    assert fits.getheader(_product(ws, "20260109_MBIAS"))["AF_NIN"] == 4
    # three darks, three needed: the set fails, and says which frame and why
    dark = "20260109_MDARK_1x1_60s_079dd7"
    assert summary.failed == (dark,)
    assert "only 2 usable frame(s), need 3" in summary.reasons[dark]
    assert "n1_dark60_1.fits: shape 48x48 differs from the set's 40x48" in summary.reasons[dark]


def test_cli_calibrate_prints_why_a_product_failed(prepared: Path) -> None:
    from typer.testing import CliRunner

    from astroflow.flows.cli import app

    settings = prepared / "sessions" / "base" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "qc.yaml").write_text("mbias:\n  median: [0, 1]\n")
    out = CliRunner().invoke(app, ["calibrate", str(prepared), "--recipe", "mbias"])
    assert out.exit_code == 0, out.output
    failed = [line for line in out.output.splitlines() if line.startswith("  failed ")]
    assert len(failed) == 2
    assert all(": QC failed: median=" in line for line in failed), failed
    assert all("[inputs" not in line for line in failed)


def test_dask_local_cluster_gives_identical_products(prepared: Path, tmp_path: Path) -> None:
    calibration_cascade(str(prepared), recipes=["mbias", "mdark"])
    first = {p.name: fits.getdata(p) for p in (prepared / "sessions").rglob("*.fits")}
    summary = calibration_cascade(
        str(prepared), recipes=["mbias", "mdark"], overwrite=True, task_runner="dask-local"
    )
    assert len(summary.made) == 5
    for name, data in first.items():
        again = fits.getdata(next((prepared / "sessions").rglob(name)))
        np.testing.assert_array_equal(again, data)


def test_cli_calibrate(prepared: Path) -> None:
    from typer.testing import CliRunner

    from astroflow.flows.cli import app

    out = CliRunner().invoke(app, ["calibrate", str(prepared), "--recipe", "mbias"])
    assert out.exit_code == 0, out.output
    assert "made=2" in out.output
    bad = CliRunner().invoke(app, ["calibrate", str(prepared), "--session", "nope"])
    assert bad.exit_code == 2
    assert "no session 'nope'" in bad.output


def test_claim_of_a_killed_process_is_taken_over(prepared: Path) -> None:
    import socket

    db = Database(prepared)
    product = "20260109_MBIAS_1x1_4178e0"
    # the lease of a process of this host that is gone (pid 999999)
    assert catalog.claim(db, "base", product, "dead", socket.gethostname(), 999999)
    row = catalog.status_rows(db, "base")[product]
    assert (row.owner_host, row.owner_pid, row.status) == (socket.gethostname(), 999999, "fail")
    assert catalog.claim_state(row) == "interrupted"
    # a live lease is refused to others
    assert not catalog.claim(db, "base", product, "other", socket.gethostname(), 999999)
    summary = calibration_cascade(str(prepared), recipes=["mbias"])
    assert product in summary.made
    row = catalog.status_rows(db, "base")[product]
    assert row.status == "pass"
    assert not row.claimed


def test_kill_9_mid_cascade_reads_interrupted_and_the_rerun_sweeps_and_finishes(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from prefect.settings import PREFECT_API_URL
    from typer.testing import CliRunner

    from astroflow.flows.cli import app

    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(3), shape=(1024, 1024))  # long enough to catch
    prepare_workspace(str(ws))
    session_dir = ws / "sessions" / "base"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    exe = Path(sys.executable).with_name("astroflow")
    proc = subprocess.Popen(
        [str(exe), "calibrate", str(ws)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while not list(session_dir.glob("astroflow-cache-*")):
        assert proc.poll() is None, "the cascade ended before it could be killed"
        assert time.monotonic() < deadline, "no pixel cache appeared"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert list(session_dir.glob("astroflow-cache-*"))  # the killed run's leftovers

    listed = CliRunner().invoke(app, ["list", "products", str(ws)])
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.output.splitlines()]
    interrupted = [r[0] for r in rows if r and r[-1] == "interrupted"]
    assert interrupted, listed.output  # a dead owner is not a failure
    assert not any(r and r[-1] == "fail" for r in rows), listed.output

    summary = calibration_cascade(str(ws))
    assert not list(session_dir.glob("astroflow-cache-*"))  # swept
    assert set(interrupted) <= set(summary.made)
    assert not summary.failed


def test_a_product_copied_into_the_workspace_is_not_taken_as_raw(prepared: Path) -> None:
    import shutil

    calibration_cascade(str(prepared), recipes=["mbias"])
    product = _product(prepared, "20260109_MBIAS")
    shutil.copy(product, prepared / "copied_master.fits")
    before = {p.name for p in catalog.load_plan(Database(prepared))[1]}
    again = prepare_workspace(str(prepared))
    reasons = dict(again.rejected)
    assert "a reduced product (AF_RECIP='mbias'), not a raw frame" in reasons["copied_master.fits"]
    assert (prepared / "misc" / "copied_master.fits").exists()
    assert {p.name for p in catalog.load_plan(Database(prepared))[1]} == before


def test_a_range_change_rejudges_without_recomputing_and_downstream_follows(
    prepared: Path,
) -> None:
    from typer.testing import CliRunner

    from astroflow.flows.cli import app

    first = calibration_cascade(str(prepared))
    assert not first.failed
    bias = _product(prepared, "20260109_MBIAS")
    made_at = bias.stat().st_ino  # a recomputed product is a new file (atomic write)
    qc_file = prepared / "sessions" / "base" / "settings" / "qc.yaml"
    qc_file.parent.mkdir(parents=True, exist_ok=True)
    qc_file.write_text("mbias:\n  median: [0, 1]\n")  # no bias passes now

    strict = calibration_cascade(str(prepared))
    biases = {n for n in strict.failed if "MBIAS" in n}
    assert len(biases) == 2
    assert all(strict.failure_kinds[n] == "qc" for n in biases)
    assert bias.stat().st_ino == made_at  # judged again (its header updated), not recomputed
    assert fits.getheader(bias)["AF_QC"] == "FAIL"
    assert any("MDARK" in name for name, _ in strict.incomplete)  # downstream follows
    listed = CliRunner().invoke(app, ["qc", str(prepared)])
    assert listed.exit_code == 0, listed.output
    assert any("median" in line and "FAIL" in line for line in listed.output.splitlines())

    qc_file.unlink()  # the defaults again
    lenient = calibration_cascade(str(prepared))
    assert not lenient.failed
    assert bias.stat().st_ino == made_at
    assert fits.getheader(bias)["AF_QC"] == "PASS"
    statuses = catalog.statuses(Database(prepared), "base")
    assert statuses["20260109_MBIAS_1x1_4178e0"] == "pass"
    assert all(statuses[n] == "pass" for n in first.made)


def _rules_with(tmp_path: Path, extra: str) -> Path:
    from astroflow.models.rules import RULESETS_DIR

    text = (RULESETS_DIR / "generic-ccd.yaml").read_text().replace("name: generic-ccd", "name: sky")
    path = tmp_path / "sky.yaml"
    path.write_text(text + extra)
    return path


SKYFLAT = """  - name: skyflat
    kind: science
    raw_tag: SKY
    product_tag: MASTER_SKYFLAT
    group_by: [instrument, binning, readout, gain, filter, night]
    min_frames: 3
    function: {function}
    needs:
      - {{recipe: mbias, match: [instrument, binning, readout, gain], tag: MASTER_BIAS}}
"""


def test_a_plug_in_recipe_runs_end_to_end_as_its_own_task(tmp_path: Path) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    rules = _rules_with(tmp_path, SKYFLAT.format(function="tests.recipe_plugin:skyflat"))
    prepare_workspace(str(ws), rules=str(rules))
    summary = calibration_cascade(str(ws))
    sky = [n for n in summary.made if "SKYFLAT" in n]
    assert sky, summary
    product = _product(ws, sky[0])
    assert fits.getheader(product)["AF_RECIP"] == "skyflat"
    assert fits.getheader(product)["AF_QC"] == "PASS"
    assert np.nanmedian(fits.getdata(product)) == pytest.approx(1.0, abs=1e-3)
    assert any(n.endswith("_RED") for n in summary.made)  # the built-ins still ran

    async def runs() -> list:
        async with get_client() as client:
            return await client.read_task_runs(
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=f"skyflat-{sky[0]}"))
            )

    (run,) = [r for r in asyncio.run(runs()) if r.state and r.state.is_completed()][:1]
    assert run.name == f"skyflat-{sky[0]}"


@pytest.mark.parametrize(
    "function", [None, "tests.recipe_plugin:nowhere"], ids=["unregistered", "missing-function"]
)
def test_prep_refuses_rules_whose_recipes_cannot_run(tmp_path: Path, function: str | None) -> None:
    from astroflow.models.errors import ConfigError

    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    extra = SKYFLAT.format(function=function or "x:y")
    if function is None:
        extra = "\n".join(line for line in extra.splitlines() if "function:" not in line) + "\n"
    rules = _rules_with(tmp_path, extra)
    with pytest.raises(ConfigError, match="recipe 'skyflat'"):
        prepare_workspace(str(ws), rules=str(rules))
    assert list(ws.glob("*.fits"))  # refused before anything ran: frames still unsorted


def test_a_cascade_that_would_fill_the_disk_stops_first(small_disk) -> None:
    from astroflow.models.errors import ConfigError
    from astroflow.storage.disk import MARGIN_BYTES
    from tests.conftest import fill_leaving

    ws = small_disk(48) / "ws"
    make_workspace(ws, np.random.default_rng(2), shape=(256, 256))
    prepare_workspace(str(ws))
    # leave the margin and a little more free: less than two 256 KB master biases need
    fill_leaving(ws.parent, MARGIN_BYTES + 300_000)
    with pytest.raises(ConfigError, match=r"the mbias level \(2 product\(s\)\) needs about"):
        calibration_cascade(str(ws))
    assert not list((ws / "sessions").rglob("*MBIAS*.fits"))  # nothing half-written


def test_a_static_bad_pixel_mask_is_in_every_reduced_frame(tmp_path: Path) -> None:
    """The rules' ``bad_pixels`` (a FITS mask next to the rules file) is OR'ed into every
    reduced frame's MASK as bit 16; the other bits keep their meaning."""
    import yaml

    from astroflow.models.rules import RULESETS_DIR
    from astroflow.processing.calibration import MASK_BAD_PIXEL

    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    data = yaml.safe_load((RULESETS_DIR / "generic-ccd.yaml").read_text())
    for recipe in data["recipes"]:
        if recipe["name"] == "reduce":
            recipe["bad_pixels"] = "democam-bpm.fits"
    (rules_dir / "democam.yaml").write_text(yaml.safe_dump(data))
    bpm = np.zeros(SHAPE, np.uint8)
    bpm[:, 7] = 1  # a dead column
    bpm[30, 20] = 1  # a hot pixel
    fits.PrimaryHDU(bpm).writeto(rules_dir / "democam-bpm.fits")
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    prepare_workspace(str(ws), rules=str(rules_dir / "democam.yaml"))
    summary = calibration_cascade(str(ws))
    assert summary.failed == ()
    reduced = sorted((ws / "sessions" / "base" / "reduced").rglob("*_RED.fits"))
    assert reduced
    for path in reduced:
        mask = fits.getdata(path, "MASK")
        np.testing.assert_array_equal((mask & MASK_BAD_PIXEL) != 0, bpm != 0)


MBPM = """  - name: mbpm
    kind: flat
    raw_tag: FLAT
    product_tag: MASTER_BPM
    group_by: [instrument, binning, readout, gain, filter, night]
    min_frames: 4
    needs:
      - {recipe: mbias, match: [instrument, binning, readout, gain], tag: MASTER_BIAS}
      - {recipe: mdark, match: [instrument, binning, readout, gain], optional: true,
         tag: MASTER_DARK}
"""


def _bpm_rules(tmp_path: Path) -> Path:
    """generic-ccd with an mbpm recipe before reduce, whose mask reduce uses when one
    matches."""
    import yaml

    from astroflow.models.rules import RULESETS_DIR

    data = yaml.safe_load((RULESETS_DIR / "generic-ccd.yaml").read_text())
    recipes = data["recipes"]
    recipes.insert(len(recipes) - 1, yaml.safe_load(MBPM)[0])
    recipes[-1]["needs"].append(
        {
            "recipe": "mbpm",
            "match": ["instrument", "binning", "readout", "gain"],
            "optional": True,
            "tag": "MASTER_BPM",
        }
    )
    path = tmp_path / "bpm.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


DEAD_COLUMN, WEAK_COLUMN, HOT = 7, 22, (30, 20)
BPM_SHAPE = (48, 64)


def _bpm_night(root: Path, rng: np.random.Generator, levels: tuple[float, ...]) -> None:
    """A night of one camera with a dead column (no more than 300 ADU of signal), a column
    that loses 20 % of its signal at the bright level only (non-linear), and a hot pixel
    (50 ADU/s): biases, darks, flats at ``levels`` (ADU/s, 2 s each) and two science
    frames."""
    from tests.organiser_data import MJD_NIGHT1

    root.mkdir(parents=True)
    h, w = BPM_SHAPE
    yy, xx = np.mgrid[0:h, 0:w]
    vignette = 1.0 - 0.2 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)

    def write(name: str, imagetyp: str, exptime: float, mjd: float, light: float) -> None:
        signal = light * exptime * vignette
        signal[:, DEAD_COLUMN] = np.minimum(signal[:, DEAD_COLUMN], 300.0)
        if light * exptime > 20000:
            signal[:, WEAK_COLUMN] *= 0.8
        dark = np.full(BPM_SHAPE, 0.5)
        dark[HOT] = 50.0
        data = 1000.0 + rng.normal(0.0, 10.0, BPM_SHAPE) + dark * exptime + signal
        header = fits.Header(
            {
                "IMAGETYP": imagetyp,
                "EXPTIME": exptime,
                "MJD-OBS": mjd,
                "INSTRUME": "TESTCAM",
                "XBINNING": 1,
                "YBINNING": 1,
                "GAIN": 1.5,
                "READOUTM": "Fast",
                "OBJECT": name,
            }
        )
        if light:
            header["FILTER"] = "R"
        fits.PrimaryHDU(data.astype(np.float32), header).writeto(root / name)

    for i in range(3):
        write(f"bias_{i}.fits", "BIAS", 0.0, MJD_NIGHT1 + i * 1e-3, 0.0)
        write(f"dark_{i}.fits", "DARK", 60.0, MJD_NIGHT1 + 0.01 + i * 1e-3, 0.0)
    for i, level in enumerate(levels):
        write(f"flat_{i}.fits", "FLAT", 2.0, MJD_NIGHT1 + 0.03 + i * 1e-3, level)
    for i in range(2):
        write(f"sci_{i}.fits", "LIGHT", 60.0, MJD_NIGHT1 + 0.1 + i * 1e-2, 8.0)


def test_a_bad_pixel_mask_from_two_flat_levels_is_ccdmask_of_their_ratio(tmp_path: Path) -> None:
    """mbpm: flats of two levels split, combined and divided; the mask equals
    ``ccdproc.ccdmask`` of that ratio, which equals the ratio of astropy's clipped means of
    the corrected flats; the dark's hot pixel is added; reduced frames carry it in bit 16."""
    from astropy.nddata import CCDData
    from ccdproc import ccdmask

    from astroflow.processing.calibration import MASK_BAD_PIXEL

    ws = tmp_path / "ws"
    levels = (4000.0, 4000.0, 4000.0, 12000.0, 12000.0, 12000.0)  # 8000 and 24000 ADU
    _bpm_night(ws, np.random.default_rng(5), levels)
    prepare_workspace(str(ws), rules=str(_bpm_rules(tmp_path)))
    summary = calibration_cascade(str(ws))
    assert summary.failed == (), summary
    bpm_path = _product(ws, "20260109_MBPM")
    bpm = fits.getdata(bpm_path)
    ratio = fits.getdata(bpm_path, "RATIO")

    # the ratio: astropy's clipped means of (raw - master bias - master dark * 2 s), bright
    # over faint
    bias = fits.getdata(_product(ws, "20260109_MBIAS")).astype(np.float64)
    dark = fits.getdata(_product(ws, "20260109_MDARK")).astype(np.float64)

    def clipped(names: list[str]) -> np.ndarray:
        stack = np.stack(
            [
                fits.getdata(ws / "raw" / "2026-01-09" / n).astype(np.float64) - bias - dark * 2.0
                for n in names
            ]
        )
        return sigma_clip(
            stack, sigma=3, maxiters=3, cenfunc="median", stdfunc="mad_std", axis=0
        ).mean(axis=0)

    expected = clipped([f"flat_{i}.fits" for i in (3, 4, 5)]) / clipped(
        [f"flat_{i}.fits" for i in (0, 1, 2)]
    )
    np.testing.assert_allclose(ratio, expected, rtol=1e-5)
    # the mask: ccdmask of that ratio, exactly, plus the hot pixel from the dark
    np.testing.assert_array_equal(
        (bpm & 1) != 0, ccdmask(CCDData(ratio.astype(np.float64), unit="adu"))
    )
    assert ((bpm[:, DEAD_COLUMN] & 1) != 0).all()
    assert ((bpm[:, WEAK_COLUMN] & 1) != 0).all()
    assert bpm[HOT] & 2
    assert (
        np.count_nonzero(bpm) < 3 * BPM_SHAPE[0] + 5
    )  # the two columns, the hot pixel: little else
    header = fits.getheader(bpm_path)
    assert header["AF_RECIP"] == "mbpm"
    assert header["QCLEVELR"] == pytest.approx(3.0, rel=0.02)

    reduced = sorted((ws / "sessions" / "base" / "reduced").rglob("*_RED.fits"))
    assert len(reduced) == 2
    for path in reduced:
        mask = fits.getdata(path, "MASK")
        np.testing.assert_array_equal((mask & MASK_BAD_PIXEL) != 0, bpm != 0)
    sofs = sorted((ws / "sessions" / "base" / "sof").glob("*_RED.sof"))
    assert all("MASTER_BPM" in sof.read_text() for sof in sofs)


def test_flats_of_one_level_fail_the_mask_and_reduce_goes_on_without_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _bpm_night(ws, np.random.default_rng(6), (4000.0,) * 5)
    prepare_workspace(str(ws), rules=str(_bpm_rules(tmp_path)))
    summary = calibration_cascade(str(ws))
    (failed,) = [o for o in summary.outcomes if o.recipe == "mbpm"]
    assert failed.kind == "failed_recipe"
    assert "flats of two levels" in failed.reason
    assert "min_level_ratio" in failed.reason
    assert len([n for n in summary.made if n.endswith("_RED")]) == 2
    sof = sorted((ws / "sessions" / "base" / "sof").glob("*_RED.sof"))[0].read_text()
    assert "MASTER_BPM" not in sof.replace("no MASTER_BPM matches", "")
    assert "no MASTER_BPM matches (optional: left out)" in sof


def test_a_changed_recipe_option_remakes_its_products_only(tmp_path: Path) -> None:
    """A product is made from its frames and its recipe's options: another combine method for
    the flats remakes the flats and what used them; the biases and darks are skipped."""
    import yaml

    from astroflow.models.rules import RULESETS_DIR

    rules = tmp_path / "rules.yaml"
    data = yaml.safe_load((RULESETS_DIR / "generic-ccd.yaml").read_text())
    rules.write_text(yaml.safe_dump(data))
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(11), shape=SHAPE)
    prepare_workspace(str(ws), rules=str(rules))
    first = calibration_cascade(str(ws))
    assert first.failed == ()
    again = calibration_cascade(str(ws))
    assert again.made == ()  # nothing changed: nothing remade

    # an option written out at its default value is no change (nor, so, is a new option
    # whose default keeps today's behaviour)
    for recipe in data["recipes"]:
        if recipe["name"] == "mflat":
            recipe["combine"] = {"method": "mean", "maxiters": 3}
    rules.write_text(yaml.safe_dump(data))
    assert calibration_cascade(str(ws)).made == ()

    for recipe in data["recipes"]:
        if recipe["name"] == "mflat":
            recipe["combine"] = {"method": "median", "sigma": None}
    rules.write_text(yaml.safe_dump(data))
    changed = calibration_cascade(str(ws))
    remade = {changed.recipes[name] for name in changed.made}
    assert remade == {"mflat", "reduce"}, changed.made
    assert all(changed.recipes[name] in ("mbias", "mdark") for name in changed.skipped)


@pytest.mark.parametrize("clean", [False, True], ids=["flag", "clean"])
def test_cosmic_rays_are_flagged_counted_and_cleaned_in_reduced_frames(
    tmp_path: Path, clean: bool
) -> None:
    """A night whose science frames were hit (single pixels and tracks, on the sky): with
    ``cosmic_rays`` on the reduce recipe the hits are in every reduced frame's MASK as bit 8,
    their count is the QC metric ``cosmic_rays`` (``astroflow qc --json``), HISTORY says so,
    and with ``clean: true`` their values are replaced by the sky around them. (False flags
    and the mask's equality with astroscrappy's: tests/processing/test_cosmics.py and
    test_lacosmic.py; L.A.Cosmic also takes the cores of some of these sharp 2.5 px stars.)"""
    import json

    import yaml
    from typer.testing import CliRunner

    from astroflow.flows.cli import app
    from astroflow.models.rules import RULESETS_DIR
    from astroflow.processing.cosmics import MASK_COSMIC_RAY
    from astroflow.processing.synthetic import GAIN, night_frames
    from astroflow.storage.organiser.frames import write_raw_frame

    rng = np.random.default_rng(27)
    ws = tmp_path / "ws"
    ws.mkdir()
    hit: dict[str, np.ndarray] = {}
    for frame in night_frames((96, 96)):
        data = frame.data.copy()
        if frame.name.startswith("n2_m42"):
            truth = np.zeros(data.shape, bool)
            sky = np.median(data)
            while truth.sum() < 40:  # on the sky: away from the stars and the edges
                y, x = int(rng.integers(4, 88)), int(rng.integers(4, 88))
                if (data[y - 3 : y + 6, x - 3 : x + 6] < sky + 60).all():
                    truth[y, x : x + int(rng.integers(1, 4))] = True
            data[truth] += rng.uniform(2000, 8000, int(truth.sum())) / GAIN
            hit[frame.name.removesuffix(".fits")] = truth
        write_raw_frame(ws / frame.name, data, frame.header)
    rules = yaml.safe_load((RULESETS_DIR / "generic-ccd.yaml").read_text())
    for recipe in rules["recipes"]:
        if recipe["name"] == "reduce":
            recipe["cosmic_rays"] = {"clean": clean}
    (tmp_path / "cam.yaml").write_text(yaml.safe_dump(rules))
    prepare_workspace(str(ws), rules=str(tmp_path / "cam.yaml"))
    summary = calibration_cascade(str(ws))
    assert not [p for p in summary.failed if p.startswith("n2_m42")]  # (one flat fails QC)
    out = CliRunner().invoke(app, ["qc", str(ws), "--json"])
    assert out.exit_code == 0, out.output
    counted = {
        r["product"]: r["value"]
        for r in map(json.loads, out.output.splitlines())
        if r["metric"] == "cosmic_rays"
    }
    assert len(hit) == 3
    for name, truth in hit.items():
        (path,) = (ws / "sessions").rglob(f"{name}_RED.fits")
        with fits.open(path) as hdul:
            flagged = (hdul["MASK"].data & MASK_COSMIC_RAY) != 0
            science = hdul[0].data
            history = str(hdul[0].header.get("HISTORY", ""))
        sky = np.median(science[~flagged])
        assert np.count_nonzero(flagged & truth) >= 0.95 * truth.sum(), name
        assert counted[f"{name}_RED"] == np.count_nonzero(flagged)
        assert "L.A.Cosmic" in history
        if clean:  # near the sky now (hits were 1300-5300 ADU above it)
            assert np.abs(science[truth & flagged] - sky).max() < 150
        else:  # flagged only: the hits are still there
            assert np.median(science[truth & flagged] - sky) > 1000
