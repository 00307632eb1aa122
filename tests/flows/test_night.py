"""One night end to end: the demo's synthetic night calibrated and published to WWT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from wwt_data_formats.folder import Folder

from astroflow.flows.cli import app
from astroflow.flows.demo import run_demo
from astroflow.processing.synthetic import FIELD_DEC, FIELD_RA
from astroflow.storage.database import Database
from astroflow.storage.organiser import catalog

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def test_demo_night_publishes_every_good_frame(tmp_path: Path) -> None:
    report = run_demo(str(tmp_path / "demo"), size=128)
    statuses = dict((p, s) for p, s, _ in report.products)
    science_pass = sorted(
        p.lower() for p, s in statuses.items() if p.endswith("_RED") and s == "pass"
    )
    assert science_pass == ["n2_m42_r_00_red", "n2_m42_r_01_red", "n2_m42_v_02_red"]
    assert list(report.published) == science_pass
    for image_id in report.published:
        folder = Folder.from_file(str(tmp_path / "demo" / "repository" / image_id / "index.wtml"))
        place = folder.children[0]
        # the frame's centre pixel is its WCS reference pixel: the Place sits on CRVAL
        assert place.ra_hr * 15 == pytest.approx(FIELD_RA, abs=1e-6)
        assert place.dec_deg == pytest.approx(FIELD_DEC, abs=1e-6)
        assert place.foreground_image_set.center_x == pytest.approx(FIELD_RA)
    root = Folder.from_file(report.root_index)
    assert len(root.children) == 3
    # the bad R flat of the second night failed QC and was substituted, and says so
    bad = [p for p, s, m in report.products if s == "fail"]
    assert len(bad) == 1
    assert "MFLAT_1x1_R" in bad[0]
    assert any(bad[0] in s and "n2_m42_R_00_RED" in s for s in report.night.cascade.substitutions)
    sof = next((tmp_path / "demo" / "workspace" / "sessions").rglob("n2_m42_R_00_RED.sof"))
    assert f"replaces {bad[0]} (failed)" in sof.read_text()
    assert report.preview is not None
    with Image.open(report.preview) as preview:  # a real PNG of the reduced frame
        assert preview.format == "PNG"
        assert preview.mode == "RGBA"
        assert preview.size[0] > 1
        assert len(set(preview.getdata(0))) > 1  # an image, not a flat fill

    again = run_demo(str(tmp_path / "demo"), size=128)
    assert again.night.prepare.headers_read == 0
    assert again.night.cascade.made == ()
    fetch, process, publish, _ = again.night.ingest
    assert fetch.new == ()
    assert process.done == ()
    assert publish.done == ()


def test_cli_demo_prints_the_report(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["demo", str(tmp_path / "d"), "--size", "96"])
    assert out.exit_code == 0, out.output
    assert "QC failed: cold_fraction" in out.output
    assert "replaces" in out.output
    assert "Published images (3)" in out.output
    assert "index.wtml" in out.output


def test_the_top_level_run_tells_its_story(tmp_path: Path) -> None:
    """What the operator sees on the process-night run (read back through the Prefect API):
    its own report artifact with every product, failures first; the failed master a Failed
    task run whose message is the reason; the headline as the run's state message."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    from astroflow.flows.night import process_night
    from astroflow.processing.synthetic import night_frames
    from astroflow.storage.organiser.frames import write_raw_frame

    workspace, repository = tmp_path / "ws", tmp_path / "repo"
    workspace.mkdir()
    repository.mkdir()
    for frame in night_frames((96, 96)):
        write_raw_frame(workspace / frame.name, frame.data, frame.header)
    state = process_night(
        str(workspace),
        str(repository),
        publish_url_prefix="http://localhost:8000/",
        return_state=True,
    )
    assert state.is_completed()
    summary = state.result()
    assert state.message.startswith(f"{summary.cascade.headline()}; ")
    assert "1 failed" in state.message
    run_id = state.state_details.flow_run_id

    async def run_name() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).name

    assert asyncio.run(run_name()) == "night-2026-03-01-DEMOCAM"  # renamed after prepare

    async def read() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )

    artifacts = asyncio.run(read())
    reports = [a for a in artifacts if a.key == "night-report"]
    assert len(reports) == 1, [a.key for a in artifacts]
    text = reports[0].data
    assert text.startswith("# Night 2026-03-01-DEMOCAM\n")  # titled with the night and camera
    (bad,) = summary.cascade.failed
    for section in ("### Products", "### QC", "### Published images", "### Rejected frames"):
        assert section in text
    # the report opens with its failures, each with its reason on a line of its own
    failures = text.split("## Failures (1)\n\n", 1)[1].split("\n\n", 1)[0]
    assert failures.startswith(f"- **{bad}**: QC failed: cold_fraction")
    # and what it held back: the frames that used another flat in its place
    assert "held back: n2_m42_R_00_RED (substituted), n2_m42_R_01_RED (substituted)" in failures
    assert text.index("## Failures") < text.index("## Prepare")
    products = text.split("### Products", 1)[1].split("###", 1)[0]
    first_row = products.splitlines()[4]  # heading, blank, header, rule, then rows
    assert bad in first_row  # failures first
    assert "**failed QC**" in first_row
    assert "QC failed" not in first_row  # the reason is below the table, not a wide column
    assert f"- **{bad}**: QC failed: cold_fraction" in products
    assert "**out of range**" in text
    # numbers one way: 4 significant figures, right-aligned, "-" for a metric without range
    qc = text.split("### QC", 1)[1].split("###", 1)[0]
    assert "|---|---|---:|---|---|" in qc
    assert "e+0" not in qc
    assert "| - |" in qc
    values = [row.split("|")[3].strip() for row in qc.splitlines()[4:] if row.startswith("|")]
    mantissas = [v.split("e")[0].replace("-", "").replace(".", "").lstrip("0") for v in values]
    long = [v for v, m in zip(values, mantissas, strict=True) if len(m) > 4]
    assert not long, long
    for image_id in summary.ingest[2].done:
        assert f"http://localhost:8000/{image_id}/index.wtml" in text
        # a localhost prefix would show broken thumbnails in a UI opened elsewhere: none
        assert f"http://localhost:8000/{image_id}/thumb.jpg" not in text

    async def failed_flat() -> list:
        async with get_client() as client:
            runs = await client.read_task_runs(
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=f"mflat-{bad}"))
            )
            return [r for r in runs if r.state is not None]

    runs = asyncio.run(failed_flat())
    assert runs
    assert all(r.state.is_failed() for r in runs)
    assert all(r.state.message.startswith("QC failed: ") for r in runs)


def _night_report_pictures(run_id: object) -> dict[str, Image.Image]:
    """The pictures of the night-report artifact of a process-night run, by their titles
    (read back through the Prefect API and decoded from their data URIs)."""
    import asyncio
    import base64
    import io
    import re

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )

    (text,) = [a.data for a in asyncio.run(read()) if a.key == "night-report"]
    assert "### Image quality over the night" in text
    found = re.findall(r"!\[([^\]]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    return {title: Image.open(io.BytesIO(base64.b64decode(data))) for title, data in found}


def test_a_defocused_frame_fails_its_image_quality_and_is_not_published(tmp_path: Path) -> None:
    """One science frame of the night out of focus (its stars blurred to ~12 px FWHM): its
    reduce fails QC with its FWHM, the night report says so, it is not published; the other
    frames are. ``astroflow qc --json`` gives one object per product and metric."""
    import json

    from scipy.ndimage import gaussian_filter

    from astroflow.flows.night import process_night
    from astroflow.processing.synthetic import night_frames
    from astroflow.storage.organiser.frames import write_raw_frame

    ws, repo = tmp_path / "ws", tmp_path / "repo"
    ws.mkdir()
    for frame in night_frames((128, 128)):
        data = frame.data
        if frame.name == "n2_m42_R_01.fits":
            data = gaussian_filter(data, 5.0).astype(data.dtype)
        write_raw_frame(ws / frame.name, data, frame.header)
    state = process_night(str(ws), str(repo), return_state=True)
    summary = state.result()
    reasons = summary.cascade.reasons
    assert list(reasons) == [p for p in summary.cascade.failed]
    defocused = [p for p in reasons if p.startswith("n2_m42_R_01")]
    assert defocused, reasons
    assert "fwhm=" in reasons[defocused[0]], reasons[defocused[0]]
    published = set(summary.ingest[2].done)
    assert "n2_m42_r_01_red" not in published
    assert {"n2_m42_r_00_red", "n2_m42_v_02_red"} <= published
    out = CliRunner().invoke(app, ["qc", str(ws), "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert all(
        set(r) == {"product", "recipe", "metric", "value", "lo", "hi", "verdict"} for r in rows
    )
    fwhm = {r["product"]: r for r in rows if r["metric"] == "fwhm"}
    assert fwhm[defocused[0]]["verdict"] == "fail"
    assert fwhm["n2_m42_R_00_RED"]["verdict"] == "pass"
    assert fwhm["n2_m42_R_00_RED"]["value"] == pytest.approx(2.55, rel=0.15)
    # the report's picture of each night's FWHM and sky, the defocused frame in red
    _, plan = catalog.load_plan(Database(ws))
    nights = {p.name: p.night for p in plan if p.recipe == "reduce"}
    pictures = _night_report_pictures(state.state_details.flow_run_id)
    assert set(pictures) == {f"FWHM and sky of night {n}" for n in nights.values()}
    for title, image in pictures.items():
        assert image.size == (640, 360)
        rgb = np.asarray(image.convert("RGB")).astype(int)
        red = np.count_nonzero(np.abs(rgb - (0xC0, 0x39, 0x2B)).sum(axis=2) < 30)
        assert (red > 20) == title.endswith(nights[defocused[0]]), title
