"""The organiser end to end: prepare a synthetic workspace on real Prefect and SQLite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from astroflow.flows.cli import app
from astroflow.flows.organiser import prepare_workspace
from astroflow.models.errors import ConfigError, InvalidKeyError
from astroflow.storage.database import Database
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.workspace import Workspace
from tests.organiser_data import make_workspace

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sof"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(7))
    return ws


def _sofs(ws: Path, session: str = "base") -> dict[str, str]:
    return {
        p.name: p.read_text() for p in sorted((ws / "sessions" / session / "sof").glob("*.sof"))
    }


def test_prepare_organises_and_predicts(workspace: Path, database_backend: str) -> None:
    s = prepare_workspace(str(workspace))
    assert s.session == "base"
    assert s.raw_frames == 37  # 38 frames, n2_bias_3.Z and n2_flatR_4.gz included, minus none
    rejected = {"corrupt.fits", "noheader.fits", "focus.fits", "readme.txt"}
    assert dict(s.rejected).keys() == rejected
    reasons = dict(s.rejected)
    assert "missing required keyword IMAGETYP" in reasons["noheader.fits"]
    assert "matches no rule" in reasons["focus.fits"]
    assert "not a readable FITS" in reasons["corrupt.fits"]
    # files moved: raw frames by night, the rest to misc/, compressed ones uncompressed
    assert (workspace / "raw" / "2026-01-10" / "n2_bias_3.fits").exists()
    assert (workspace / "raw" / "2026-01-10" / "n2_flatR_4.fits").exists()
    assert not list(workspace.glob("*.Z"))
    assert not list(workspace.glob("*.gz"))
    assert {p.name for p in (workspace / "misc").iterdir()} == {
        "corrupt.fits",
        "noheader.fits",
        "focus.fits",
        "readme.txt",
    }
    assert (workspace / "misc" / "readme.txt").exists()  # not FITS: misc/, as soxspipe does
    assert "not a FITS file" in reasons["readme.txt"]
    assert len(list((workspace / "raw" / "2026-01-09").iterdir())) == 23
    db = Database(workspace)
    sets, products = catalog.load_plan(db)
    by_recipe = {
        r: [x for x in sets if x.recipe == r] for r in ("mbias", "mdark", "mflat", "reduce")
    }
    assert len(by_recipe["mbias"]) == 2
    assert sorted(x.exptime for x in by_recipe["mdark"]) == [60.0, 90.0, 120.0]  # 60.0001 merged
    flats = {x.key("filter"): x for x in by_recipe["mflat"] if x.night == "2026-01-09"}
    assert not flats["V"].complete
    assert "only 2 flat" in flats["V"].reason
    assert len(by_recipe["reduce"]) == 7  # one set per science frame
    assert all(p.filepath == f"reduced/{p.night}/{p.recipe}/{p.name}.fits" for p in products)
    assert len(catalog.rejected(db)) == 4  # the three bad FITS and readme.txt, each with its reason


def test_sof_files_match_golden(workspace: Path) -> None:
    prepare_workspace(str(workspace))
    got = _sofs(workspace)
    if os.environ.get("ASTROFLOW_REGEN_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        GOLDEN.mkdir(parents=True)
        for name, text in got.items():
            (GOLDEN / name).write_text(text)
    want = {p.name: p.read_text() for p in sorted(GOLDEN.glob("*.sof"))}
    assert got == want


def test_calibration_matching_in_the_workspace(workspace: Path) -> None:
    prepare_workspace(str(workspace))
    sofs = _sofs(workspace)
    sci = sofs["n1_sciR_0_RED.sof"]
    assert "MDARK_1x1_60s" in sci
    assert "MFLAT_1x1_R" in sci
    assert "20260109_MBIAS" in sci
    assert "# INCOMPLETE" not in sci
    # 100 s: |delta exptime| ranks first, so the other night's 90 s dark beats 120 s and 60 s
    assert "MDARK_1x1_90s" in sofs["n1_sciV_0_RED.sof"]
    assert "# INCOMPLETE: no MASTER_FLAT" in sofs["n1_sciV_0_RED.sof"]  # V flats too few
    assert (
        "# INCOMPLETE: no MASTER_BIAS with instrument=TESTCAM, binning=2x2"
        in sofs["n1_sci2x2_0_RED.sof"]
    )
    assert "MDARK_1x1_90s" in sofs["n2_sciR_0_RED.sof"]
    assert "20260110_MBIAS" in sofs["n2_sciR_0_RED.sof"]


def test_second_prepare_reads_nothing_and_writes_nothing(
    workspace: Path, database_backend: str
) -> None:
    first = prepare_workspace(str(workspace))
    assert first.headers_read == 40
    before = {p: p.stat().st_mtime_ns for p in (workspace / "sessions").rglob("*.sof")}
    again = prepare_workspace(str(workspace))
    assert again.headers_read == 0
    assert again.sofs_written == 0
    assert not again.database_changed
    assert {p: p.stat().st_mtime_ns for p in (workspace / "sessions").rglob("*.sof")} == before
    assert again.sets == first.sets


def test_sanity_check_both_ways(workspace: Path, database_backend: str) -> None:
    prepare_workspace(str(workspace))
    night = workspace / "raw" / "2026-01-09"
    (night / "n1_sciR_2.fits").unlink()
    shutil.copy(night / "n1_sciR_1.fits", night / "n1_sciR_9.fits")  # appears in raw/ directly
    s = prepare_workspace(str(workspace))
    assert s.removed_frames == 1
    assert s.new_frames == 1
    assert s.headers_read == 1
    sofs = _sofs(workspace)
    assert "n1_sciR_2_RED.sof" not in sofs
    assert "n1_sciR_9_RED.sof" in sofs
    paths = set(catalog.load_frames(Database(workspace)))
    assert "raw/2026-01-09/n1_sciR_2.fits" not in paths
    assert "raw/2026-01-09/n1_sciR_9.fits" in paths


def test_sessions_are_isolated(workspace: Path, database_backend: str) -> None:
    prepare_workspace(str(workspace))
    Workspace.open(workspace).create_session("alt")
    db = Database(workspace)
    assert catalog.current_session(db).name == "alt"
    _, products = catalog.load_plan(db)
    bias1 = next(p.name for p in products if p.name.startswith("20260109_MBIAS"))
    bias2 = next(p.name for p in products if p.name.startswith("20260110_MBIAS"))
    catalog.set_status(db, "alt", bias1, "fail", "QC failed")
    prepare_workspace(str(workspace))
    alt = _sofs(workspace, "alt")["n1_sciR_0_RED.sof"]
    base = _sofs(workspace, "base")["n1_sciR_0_RED.sof"]
    alt_lines = [line for line in alt.splitlines() if not line.startswith("#")]
    assert any(bias2 in line for line in alt_lines)  # next closest bias in alt
    assert not any(bias1 in line for line in alt_lines)
    assert f"# SUBSTITUTED: {bias2} replaces {bias1} (failed)" in alt
    assert bias1 in base  # base untouched
    assert catalog.statuses(db, "base") == {}
    Workspace.open(workspace).switch_session("base")
    assert catalog.current_session(db).name == "base"
    with pytest.raises(InvalidKeyError):
        Workspace.open(workspace).create_session("../evil")
    with pytest.raises(InvalidKeyError):
        Workspace.open(workspace).create_session("x" * 17)
    with pytest.raises(ConfigError, match="already exists"):
        Workspace.open(workspace).create_session("alt")


def test_prepare_is_deterministic(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        ws = tmp_path / name
        make_workspace(ws, np.random.default_rng(7))
        prepare_workspace(str(ws))
        outputs.append(_sofs(ws))
        sets, products = catalog.load_plan(Database(ws))
        outputs.append((sets, products))
    assert outputs[0] == outputs[2]
    assert outputs[1] == outputs[3]


def test_refresh_rebuilds(workspace: Path) -> None:
    prepare_workspace(str(workspace))
    s = prepare_workspace(str(workspace), refresh=True)
    assert s.headers_read == 37
    assert s.raw_frames == 37


def test_rows_follow_db_conventions(workspace: Path) -> None:
    prepare_workspace(str(workspace))
    db = Database(workspace)
    with db.engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT _id FROM raw_frames")).scalars().all()
        assert len(set(ids)) == len(ids) == 37
        assert all(len(i) == 32 for i in ids)  # server-made UUIDs
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []


def test_cli_prep_and_lists(workspace: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["prep", str(workspace)])
    assert result.exit_code == 0, result.output
    assert "raw=37" in result.output
    for what, expect in [
        ("raw", "n1_bias_0.fits"),
        ("sets", "MBIAS"),
        ("products", "MASTER_FLAT"),
        ("sofs", "MASTER_DARK"),
        ("obs", "M42"),
    ]:
        out = runner.invoke(app, ["list", what, str(workspace)])
        assert out.exit_code == 0, out.output
        assert expect in out.output
    out = runner.invoke(app, ["session", "create", str(workspace), "night2"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["session", "list", str(workspace)])
    assert "* " in out.output
    assert "night2" in out.output
    out = runner.invoke(app, ["session", "refresh", str(workspace)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["session", "switch", str(workspace), "bad/id"])
    assert out.exit_code == 2
    assert "invalid session id" in out.output


def test_read_only_workspace_lists_and_refuses_writes_in_one_line(
    workspace: Path, read_only_view
) -> None:
    prepare_workspace(str(workspace))
    ro = read_only_view(workspace.parent) / workspace.name
    runner = CliRunner()
    listed = runner.invoke(app, ["list", "raw", str(ro)])
    assert listed.exit_code == 0, listed.output
    assert "(37 rows)" in listed.output
    products = runner.invoke(app, ["list", "products", str(ro)])
    assert products.exit_code == 0, products.output
    for command in (["prep"], ["calibrate"], ["session", "switch"], ["session", "create"]):
        extra = ["base"] if command[0] == "session" else []
        result = runner.invoke(app, [*command, str(ro), *extra])
        assert result.exit_code == 2, (command, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert errors == [
            f"error: workspace {ro} is read-only: frames, SOF files, products and the database "
            "are written there; make it writable (or work on a copy)"
        ], (command, result.output)
        assert "Traceback" not in result.output


def _json_rows(output: str) -> list[dict]:
    import json

    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_listings_filter_and_speak_json(workspace: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["prep", str(workspace)]).exit_code == 0
    raw = _json_rows(runner.invoke(app, ["list", "raw", str(workspace), "--json"]).output)
    assert len(raw) == 37
    assert {"file", "night", "type"} <= set(raw[0])
    flats = _json_rows(
        runner.invoke(
            app, ["list", "raw", str(workspace), "--type", "flat", "--filter", "R", "--json"]
        ).output
    )
    assert flats
    assert all(r["type"] == "flat" and r["filter"] == "R" for r in flats)
    night = _json_rows(
        runner.invoke(
            app, ["list", "raw", str(workspace), "--night", "2026-01-10", "--json"]
        ).output
    )
    assert night
    assert {r["night"] for r in night} == {"2026-01-10"}
    # the frames of one SOF
    sof = next((workspace / "sessions" / "base" / "sof").glob("20260109_MBIAS*.sof"))
    listed = {ln.split()[0] for ln in sof.read_text().splitlines() if ln and ln[0] != "#"}
    in_sof = _json_rows(
        runner.invoke(app, ["list", "raw", str(workspace), "--sof", str(sof), "--json"]).output
    )
    assert {r["file"] for r in in_sof} == {p for p in listed if p.startswith("raw/")}
    assert all(r["type"] == "bias" for r in in_sof)
    products = _json_rows(
        runner.invoke(
            app, ["list", "products", str(workspace), "--recipe", "mbias", "--json"]
        ).output
    )
    assert {"name", "recipe", "status"} <= set(products[0])
    assert {p["recipe"] for p in products} == {"mbias"}
    assert all(p["status"] == "-" for p in products)  # nothing made yet
    science = _json_rows(
        runner.invoke(app, ["list", "sofs", str(workspace), "--science", "--json"]).output
    )
    assert science
    assert {r["recipe"] for r in science} == {"reduce"}
    unprocessed = runner.invoke(app, ["list", "raw", str(workspace), "--unprocessed", "--json"])
    assert len(_json_rows(unprocessed.output)) == 37  # nothing processed yet
    missing = runner.invoke(app, ["list", "raw", str(workspace), "--sof", "nope.sof"])
    assert missing.exit_code == 2
    assert "cannot read SOF file nope.sof" in missing.output
