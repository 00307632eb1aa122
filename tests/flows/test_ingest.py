"""End-to-end ingest on real Prefect flows: local folders, Azurite, an AstroPix feed over HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pytest_httpserver import HTTPServer
from wwt_data_formats.folder import Folder
from wwt_data_formats.imageset import ImageSet
from wwt_data_formats.place import Place

from astroflow.flows.ingest import (
    fetch_images,
    ignore_rejects,
    ingest_images,
    process_images,
    publish_images,
    reindex_repository,
)
from astroflow.processing.tiling import count_tiles
from astroflow.processing.wcs import header_from_wcs, orient_top_down, study_geometry
from astroflow.storage.ingest.layout import ImageLayout
from astroflow.storage.ingest.repository import RepositoryRef, open_repository
from tests.conftest import AZURE_ENV
from tests.imagedata import astropix_entry, tan_wcs, tile_agreement, write_avm_jpeg, write_fits

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def _config(
    repo_dir: Path, source: str, prefix: str = "https://data.example.org/wwt", extra: str = ""
) -> None:
    repo_dir.mkdir(parents=True, exist_ok=True)
    (repo_dir / "toasty-pipeline-config.yaml").write_text(
        f"source_type: folder\npublish_url_prefix: {prefix}\nfolder_name: Night images\n"
        f"folder_thumbnail_url: {prefix}/thumb.jpg\nfolder:\n  path: {source}\n{extra}"
    )


def _write_avm_png(path: Path, pixels: np.ndarray, wcs) -> None:
    from pyavm import AVM

    plain = path.with_suffix(".plain.png")
    Image.fromarray(pixels).save(plain)
    AVM.from_wcs(wcs, shape=pixels.shape[:2]).embed(str(plain), str(path))
    plain.unlink()


@pytest.fixture
def source(tmp_path: Path, rng: np.random.Generator) -> dict[str, object]:
    """A folder of good and bad inputs, with the WCS each good one was made with."""
    src = tmp_path / "source"
    src.mkdir()
    wcs_fits = tan_wcs(601, 401, rotation_deg=30.0, scale_deg=2e-4)
    write_fits(src / "M42 Field.fits", 601, 401, rng, wcs_fits)
    yy, xx = np.mgrid[0:200, 0:250]
    pattern = np.stack([xx % 256, yy % 256, (xx * 7 + yy * 3) % 256], axis=-1).astype(np.uint8)
    wcs_png = tan_wcs(250, 200, rotation_deg=-10.0, crval=(10.0, 41.0))
    _write_avm_png(src / "andromeda.png", pattern, wcs_png)
    write_fits(src / "nowcs.fits", 50, 40, rng, None)
    (src / "corrupt.fits").write_bytes(b"SIMPLE  =                    T" + b"\x00" * 100)
    good_jpeg = tmp_path / "full.jpg"
    write_avm_jpeg(good_jpeg, 320, 240, rng, tan_wcs(320, 240))
    (src / "truncated.jpg").write_bytes(good_jpeg.read_bytes()[:600])
    sin = tan_wcs(100, 100)
    sin.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    write_fits(src / "sin.fits", 100, 100, rng, sin)
    (src / "notes.txt").write_text("not an image")
    return {"dir": src, "fits_wcs": wcs_fits, "png_wcs": wcs_png, "pattern": pattern}


def _published(repo_dir: Path) -> set[str]:
    return {p.parent.name for p in repo_dir.glob("*/index.wtml")}


def test_folder_ingest_end_to_end_local(tmp_path: Path, source: dict) -> None:
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    _config(repo_dir, str(source["dir"]))
    fetch, process, publish, reindex = ingest_images(str(repo_dir), str(work))

    assert set(fetch.new) == {"m42_field", "andromeda", "nowcs", "corrupt", "truncated", "sin"}
    assert set(process.done) == {"m42_field", "andromeda"}
    assert set(process.failed) == {"nowcs", "corrupt", "truncated", "sin"}
    by_input = {r.inputs[0]: r for r in process.errors.reports}
    assert "no celestial WCS" in by_input["nowcs"].message
    assert "not a readable FITS" in by_input["corrupt"].message
    assert "not a readable image" in by_input["truncated"].message
    assert "not TAN" in by_input["sin"].message
    assert all(r.expected for r in process.errors.reports)
    # every error names the user's file (not our copy image.fits), once, on one line
    for report in by_input.values():
        assert "image." not in report.message, report.message
        assert "\n" not in report.message
    assert by_input["nowcs"].message.startswith(f"{source['dir'].as_uri()}/nowcs.fits: ")
    assert by_input["sin"].message.count("sin.fits") == 1
    assert set(publish.done) == {"m42_field", "andromeda"}
    assert _published(repo_dir) == {"m42_field", "andromeda"}
    # failed inputs stay in cache_todo with their error; good ones moved on
    assert (work / "cache_todo" / "nowcs" / "error.txt").exists()
    assert sorted(p.name for p in (work / "out_done").iterdir()) == ["andromeda", "m42_field"]
    assert sorted(p.name for p in (work / "cache_done").iterdir()) == ["andromeda", "m42_field"]

    # -- WTML read back with wwt_data_formats, field by field ------------------------------
    header, _ = orient_top_down(header_from_wcs(source["fits_wcs"]), 401)
    peer = ImageSet()
    peer.tile_levels = study_geometry(601, 401)[1]
    peer_place = Place()
    peer.set_position_from_wcs(header, 601, 401, place=peer_place)
    folder = Folder.from_file(str(repo_dir / "m42_field" / "index.wtml"))
    place = folder.children[0]
    imgset = place.foreground_image_set
    for field in (
        "center_x",
        "center_y",
        "rotation_deg",
        "offset_x",
        "offset_y",
        "base_degrees_per_tile",
    ):
        assert getattr(imgset, field) == pytest.approx(getattr(peer, field)), field
    assert imgset.tile_levels == 2
    assert imgset.projection.value == "Tan"
    assert imgset.sparse
    assert not imgset.bottoms_up
    assert imgset.url == "https://data.example.org/wwt/m42_field/{1}/{3}/{3}_{2}.fits"
    assert imgset.file_type == ".fits"  # a FITS input: WWT's tiled FITS
    assert imgset.thumbnail_url == "https://data.example.org/wwt/m42_field/thumb.jpg"
    assert place.ra_hr == pytest.approx(peer_place.ra_hr)
    assert place.dec_deg == pytest.approx(peer_place.dec_deg)
    assert place.zoom_level == pytest.approx(peer_place.zoom_level)
    rel = Folder.from_file(str(repo_dir / "m42_field" / "index_rel.wtml"))
    assert rel.children[0].foreground_image_set.url == "{1}/{3}/{3}_{2}.fits"
    with Image.open(repo_dir / "m42_field" / "thumb.jpg") as thumb:
        assert thumb.size == (96, 45)

    # -- tile pixels of the PNG pattern equal the source ------------------------------------
    _, levels, x0, y0 = study_geometry(250, 200)
    assert levels == 0
    with Image.open(repo_dir / "andromeda" / "L0X0Y0.png") as tile:
        assert tile.mode == "RGBA"
        assert tile.size == (256, 256)
        arr = np.asarray(tile)
    np.testing.assert_array_equal(arr[y0 : y0 + 200, x0 : x0 + 250, :3], source["pattern"])
    assert (arr[y0 : y0 + 200, x0 : x0 + 250, 3] == 255).all()
    assert (arr[:y0, :, 3] == 0).all()  # transparent padding

    # -- root index: a Folder of both Places, newest first ----------------------------------
    root = Folder.from_file(str(repo_dir / "index.wtml"))
    assert root.name == "Night images"
    stamps = [p.get("LastUpdated") for p in ET.parse(repo_dir / "index.wtml").getroot()]
    assert stamps == sorted(stamps, reverse=True)
    assert {c.name for c in root.children} == {"M42 Field", "andromeda"}
    assert set(reindex.done) == {"m42_field", "andromeda"}


def test_rerun_does_no_work_and_changed_source_is_reingested(tmp_path: Path, source: dict) -> None:
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    _config(repo_dir, str(source["dir"]))
    ingest_images(str(repo_dir), str(work))
    tiles_before = {p: p.stat().st_mtime_ns for p in (repo_dir / "m42_field").iterdir()}

    fetch, process, publish, _ = ingest_images(str(repo_dir), str(work))
    assert fetch.new == ()
    assert {"m42_field", "andromeda"} <= set(fetch.skipped)
    assert process.done == ()
    assert publish.done == ()
    assert {p: p.stat().st_mtime_ns for p in (repo_dir / "m42_field").iterdir()} == tiles_before

    # The source changes upstream: the manifest's last_updated no longer matches.
    later = time.time() + 100
    os.utime(source["dir"] / "M42 Field.fits", (later, later))
    fetch, process, publish, _ = ingest_images(str(repo_dir), str(work))
    assert fetch.new == ("m42_field",)
    assert process.done == ("m42_field",)
    assert publish.done == ("m42_field",)
    manifest = json.loads((repo_dir / "m42_field" / ImageLayout.MANIFEST).read_text())
    assert manifest["last_updated"].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(later)))


def test_id_the_repository_holds_for_another_source_is_not_refetched(
    tmp_path: Path, source: dict
) -> None:
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    _config(repo_dir, str(source["dir"]))
    ingest_images(str(repo_dir), str(work))
    assert "andromeda" in _published(repo_dir)
    before = (repo_dir / "andromeda" / ImageLayout.MANIFEST).read_text()
    other = tmp_path / "other"
    other.mkdir()
    (other / "Andromeda.png").write_bytes((source["dir"] / "andromeda.png").read_bytes())
    _config(repo_dir, str(other))
    fetch = fetch_images(str(repo_dir), str(work))
    (report,) = fetch.errors.reports
    assert report.inputs == ("andromeda",)
    assert "already holds for" in report.message
    assert "Andromeda.png" in report.message
    assert (repo_dir / "andromeda" / ImageLayout.MANIFEST).read_text() == before  # untouched


def test_skip_flag_is_never_fetched(tmp_path: Path, source: dict) -> None:
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    _config(repo_dir, str(source["dir"]))
    (repo_dir / "andromeda").mkdir()
    (repo_dir / "andromeda" / "skip.flag").write_text("no\n")
    summary = fetch_images(str(repo_dir), str(work))
    assert "andromeda" in summary.skipped
    assert not (work / "cache_todo" / "andromeda").exists()


@pytest.mark.azure
def test_folder_ingest_to_azurite(
    tmp_path: Path, rng: np.random.Generator, azure_container: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_fits(src / "ngc1.fits", 700, 300, rng, tan_wcs(700, 300, rotation_deg=12.0))
    config = tmp_path / "cfg"
    _config(config, str(src))
    url = f"az://{azure_container}/wwt"
    repo = open_repository(RepositoryRef(url=url, credential_env=AZURE_ENV))
    repo.write_bytes(
        "toasty-pipeline-config.yaml", (config / "toasty-pipeline-config.yaml").read_bytes()
    )
    work = tmp_path / "work"
    fetch, _process, publish, reindex = ingest_images(url, str(work), azure_conn_env=AZURE_ENV)
    assert fetch.new == ("ngc1",)
    assert publish.done == ("ngc1",)
    keys = set(repo.find("ngc1"))
    assert {"ngc1/index.wtml", "ngc1/index_rel.wtml", "ngc1/thumb.jpg", "ngc1/0/0/0_0.fits"} <= keys
    assert "ngc1/preview.png" in keys
    # 1 + 4 + 8: the 700x300 band covers 2 of 4 tile rows at level 2 (sparse)
    assert len([k for k in keys if k.endswith(".fits")]) == 13 == count_tiles(700, 300)
    root = Folder.from_text(repo.read_text("index.wtml"))
    assert [c.name for c in root.children] == ["ngc1"]
    assert reindex.done == ("ngc1",)
    again = fetch_images(url, str(work), azure_conn_env=AZURE_ENV)
    assert again.new == ()


# -- AstroPix feed over HTTP -----------------------------------------------------------------


def test_astropix_feed_over_http(
    tmp_path: Path, httpserver: HTTPServer, rng: np.random.Generator
) -> None:
    jpeg = tmp_path / "img.jpg"
    write_avm_jpeg(jpeg, 320, 240, rng, None)
    body = jpeg.read_bytes()
    private = tmp_path / "private" / "secret.jpg"
    private.parent.mkdir()
    write_avm_jpeg(private, 320, 240, rng, None)
    base = httpserver.url_for("")
    feed = [
        astropix_entry("NOAO0001", f"{base}img/1.jpg", last_updated="2024-05-02T00:00:00"),
        astropix_entry("noao0002", f"{base}img/2.jpg", last_updated="2024-06-01T00:00:00Z"),
        astropix_entry("sin01", f"{base}img/3.jpg", wcs_projection="SIN"),
        astropix_entry("a/b", f"{base}img/4.jpg"),
        {"publisher_id": "noao", "title": "no id"},
        "not an object",
        astropix_entry("x" * 300, f"{base}img/5.jpg"),
        astropix_entry("empty", f"{base}img/empty.jpg"),
        astropix_entry("trunc", f"{base}img/trunc.jpg"),
        astropix_entry("badwcs", f"{base}img/1.jpg", wcs_scale="nonsense"),
        # hostile: a local file named by the feed, ids that differ only in case, no extension
        astropix_entry("private", private.as_uri()),
        astropix_entry("M42", f"{base}img/1.jpg"),
        astropix_entry("m42", f"{base}img/2.jpg"),
        astropix_entry("noext", f"{base}img/download"),
        astropix_entry("", f"{base}img/1.jpg"),
    ]
    feed[4]["wcs_projection"] = "TAN"
    httpserver.expect_oneshot_request("/feed.json").respond_with_data("busy", status=503)
    httpserver.expect_request("/feed.json").respond_with_json(feed)
    httpserver.expect_request("/img/1.jpg").respond_with_data(body, content_type="image/jpeg")
    httpserver.expect_request("/img/2.jpg").respond_with_data(body, content_type="image/jpeg")
    httpserver.expect_request("/img/empty.jpg").respond_with_data(b"")
    httpserver.expect_request("/img/trunc.jpg").respond_with_data(body[: len(body) // 3])
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    repo_dir.mkdir()
    (repo_dir / "toasty-pipeline-config.yaml").write_text(
        "source_type: astropix\npublish_url_prefix: https://x.org/\nfolder_name: AstroPix\n"
        f"astropix:\n  json_query_url: {base}feed.json\n"
    )
    fetch, process, _publish, reindex = ingest_images(str(repo_dir), str(work))

    assert set(fetch.new) == {"noao_noao0001", "noao_noao0002", "noao_trunc", "noao_badwcs"}
    assert set(fetch.rejected) == {"noao_sin01", "noao_a_b"}
    fetch_failed = {r.inputs[0]: r.message for r in fetch.errors.reports}
    assert "noao_empty" in fetch_failed
    assert "0-byte" in fetch_failed["noao_empty"]
    assert any("no 'image_id'" in m for m in fetch_failed.values())
    assert any("not an object" in m for m in fetch_failed.values())
    assert any("invalid id" in m for m in fetch_failed.values())
    # the feed cannot make us read a local file
    assert "not an http(s) URL" in fetch_failed["noao/private"]
    assert "secret.jpg" in fetch_failed["noao/private"]
    # ids equal but for case: both reported, neither fetched (no race for one folder)
    assert "all give the id 'noao_m42'" in fetch_failed["noao/M42"]
    assert "noao/M42" in fetch_failed["noao/m42"]
    assert "image file extension" in fetch_failed["noao/noext"]
    assert "empty publisher_id or image_id" in fetch_failed["noao/"]
    secret_sha = hashlib.sha256(private.read_bytes()).hexdigest()
    for manifest in repo_dir.glob("*/astroflow-manifest.json"):
        assert secret_sha not in manifest.read_text()
    assert not (repo_dir / "noao_private").exists()
    assert not (repo_dir / "noao_m42").exists()
    assert not list((work / "cache_todo").glob("*.partial"))  # failed fetches leave nothing
    assert set(process.done) == {"noao_noao0001", "noao_noao0002"}
    assert set(process.failed) == {"noao_trunc", "noao_badwcs"}
    assert set(reindex.done) == {"noao_noao0001", "noao_noao0002"}
    root = ET.parse(repo_dir / "index.wtml").getroot()
    names = [p.get("Name") for p in root.iter("Place")]
    assert names == ["Image noao0002", "Image NOAO0001"]  # newest first; 'Z' and naive both UTC
    place = Folder.from_file(str(repo_dir / "noao_noao0001" / "index.wtml")).children[0]
    assert place.foreground_image_set.credits_url == "https://example.org/NOAO0001"

    written, errors = ignore_rejects(str(repo_dir), str(work))
    assert set(written) == {"noao_sin01", "noao_a_b"}
    assert not errors
    flag = (repo_dir / "noao_sin01" / "skip.flag").read_text()
    assert "not TAN" in flag  # every flag holds its reason (toasty's were empty after the first)
    assert "retrievable" in (repo_dir / "noao_a_b" / "skip.flag").read_text()


def test_missing_config_stops_the_run_with_a_clear_error(tmp_path: Path) -> None:
    from astroflow.models.errors import ConfigError

    (tmp_path / "repo").mkdir()
    with pytest.raises(ConfigError, match=r"toasty-pipeline-config\.yaml"):
        fetch_images(str(tmp_path / "repo"), str(tmp_path / "work"))
    (tmp_path / "repo" / "toasty-pipeline-config.yaml").write_text(
        "source_type: astropix\npublish_url_prefix: x\nfolder_name: y\n"
    )
    with pytest.raises(ConfigError, match="astropix"):
        fetch_images(str(tmp_path / "repo"), str(tmp_path / "work"))
    (tmp_path / "repo" / "toasty-pipeline-config.yaml").write_text(
        "source_type: folder\npublish_url_prefix: x\nfolder_name: y\nfolder:\n  path: /tmp\n"
        "fits_tiles: jpeg\n"
    )
    with pytest.raises(ConfigError, match=r"config\.yaml.*fits_tiles: Input should be 'fits' or"):
        fetch_images(str(tmp_path / "repo"), str(tmp_path / "work"))


# -- crash safety ----------------------------------------------------------------------------


_PUBLISH_SCRIPT = """
import os, signal, sys
from astroflow.storage.ingest.repository import LocalRepository, RepositoryRef
from astroflow.tasks.ingest_work import publish_image

upload = LocalRepository._upload_file
done = []


def upload_then_die(self, local_path, path, key):
    upload(self, local_path, path, key)
    done.append(key)
    if len(done) == int(sys.argv[4]):  # killed from inside the upload, mid-tree
        os.kill(os.getpid(), signal.SIGKILL)


LocalRepository._upload_file = upload_then_die
publish_image(sys.argv[1], RepositoryRef.of(sys.argv[2]), sys.argv[3])
"""


def test_kill_mid_publish_then_rerun(tmp_path: Path, rng: np.random.Generator) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_fits(src / "big.fits", 3000, 2000, rng, tan_wcs(3000, 2000))
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    _config(repo_dir, str(src))
    fetch_images(str(repo_dir), str(work))
    process_images(str(repo_dir), str(work))

    def files(folder: Path) -> set[str]:  # tiled FITS: {level}/{y}/{y}_{x}.fits
        return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}

    total = len(files(work / "out_todo" / "big"))
    assert total > 100
    proc = subprocess.run(
        [sys.executable, "-c", _PUBLISH_SCRIPT, "big", str(repo_dir), str(work), "40"],
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL  # it died mid-upload, as a kill -9 does
    uploaded = [n for n in files(repo_dir / "big") if not Path(n).name.startswith(".")]
    assert 40 <= len(uploaded) < total
    assert "index.wtml" not in uploaded  # the marker goes last: not there
    assert (work / "out_todo" / "big").is_dir()  # not marked published
    assert reindex_repository(str(repo_dir)).done == ()  # never indexed without its marker
    publish = publish_images(str(repo_dir), str(work))
    assert publish.done == ("big",)
    final = files(repo_dir / "big")
    assert final == files(work / "out_done" / "big")
    assert not [n for n in final if ".tmp" in n or Path(n).name.startswith(".")]
    assert reindex_repository(str(repo_dir)).done == ("big",)


# -- dying repositories ----------------------------------------------------------------------


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``astroflow ARGS`` in another process, on the test harness's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    exe = Path(sys.executable).with_name("astroflow")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.azure
def test_publish_to_a_dead_azure_endpoint_stops_and_publishes_nothing(
    tmp_path: Path, source: dict, own_azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("DYING_AZ", own_azurite.conn)
    BlobServiceClient.from_connection_string(own_azurite.conn).create_container("night")
    url = "az://night/wwt"
    repo = open_repository(RepositoryRef(url=url, credential_env="DYING_AZ"))
    repo.write_text(
        "toasty-pipeline-config.yaml",
        f"source_type: folder\npublish_url_prefix: https://x.org/\nfolder_name: N\n"
        f"folder:\n  path: {source['dir']}\n",
    )
    work = tmp_path / "work"
    fetch_images(url, str(work), "DYING_AZ")
    process_images(url, str(work), "DYING_AZ")
    pending = sorted(p.name for p in (work / "out_todo").iterdir())
    assert pending
    own_azurite.kill()  # the endpoint dies before the upload

    started = time.monotonic()
    result = _cli("publish", url, str(work), "--azure-conn-env", "DYING_AZ")
    elapsed = time.monotonic() - started
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr[-3000:])
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: repository az://night/wwt is unreachable"), last
    assert "Traceback" not in result.stderr
    # nothing marked published: every image still waits in out_todo
    assert sorted(p.name for p in (work / "out_todo").iterdir()) == pending
    assert not (work / "out_done").exists() or not list((work / "out_done").iterdir())
    print(f"dead endpoint detected in {elapsed:.1f} s")

    started = time.monotonic()
    check = _cli("repo", "check", url, "--azure-conn-env", "DYING_AZ")
    assert check.returncode == 1
    assert "reachable:  no" in check.stdout
    print(f"repo check of a dead endpoint: {time.monotonic() - started:.1f} s")


@pytest.mark.azure
def test_sigterm_stops_a_publish_stuck_on_a_silent_endpoint(tmp_path: Path, blackhole: int) -> None:
    from prefect.settings import PREFECT_API_URL

    from tests.conftest import AZURITE_ACCOUNT, AZURITE_KEY

    work = tmp_path / "work"
    image = work / "out_todo" / "img1"
    image.mkdir(parents=True)
    (image / "index.wtml").write_text("<Folder/>")
    (image / "L0X0Y0.png").write_bytes(b"tile")
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blackhole}/{AZURITE_ACCOUNT};"
    )
    env = {**os.environ, "SILENT_AZ": conn, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    exe = Path(sys.executable).with_name("astroflow")
    proc = subprocess.Popen(
        [str(exe), "publish", "az://night/wwt", str(work), "--azure-conn-env", "SILENT_AZ"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the flow runs (and waits on the endpoint)
        if "Beginning flow run" in line:
            break
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)  # seconds, not the minutes of the SDK's own retries
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("publish did not stop within 30 s of SIGTERM")
    assert proc.returncode != 0
    assert (image / "index.wtml").exists()  # still waiting to be published


# -- review before publish ------------------------------------------------------------------


def _resume_when_paused(answer: dict, found: dict) -> threading.Thread:
    """A thread that waits for a paused ingest-images run, reads what it shows, answers."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    async def wait() -> None:
        async with get_client() as client:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=dict(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                    )
                )
                if runs:
                    found["run"] = runs[0]
                    artifacts = await client.read_artifacts(
                        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["review"]))
                    )
                    found["review"] = [a.data for a in artifacts]
                    break
                await asyncio.sleep(0.5)

    def run() -> None:
        asyncio.run(wait())
        if "run" in found:
            resume_flow_run(found["run"].id, run_input=answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_review_in_the_resume_form_publishes_only_approved(tmp_path: Path, source: dict) -> None:
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    _config(repo_dir, str(source["dir"]), prefix="http://localhost:8000/")
    found: dict = {}
    answer = {
        "approve": ["m42_field"],
        "reject": ["andromeda"],
        "reasons": {"andromeda": "blurred"},
    }
    thread = _resume_when_paused(answer, found)
    stages = ingest_images(str(repo_dir), str(work), review=True, review_timeout=240)
    thread.join(30)
    assert "run" in found, "the run never paused for review"
    shown = found["review"][-1]
    assert "m42_field" in shown
    assert "andromeda" in shown
    assert "data:image/jpeg;base64," in shown  # thumbnails
    assert _published(repo_dir) == {"m42_field"}
    assert "blurred" in (repo_dir / "andromeda" / "skip.flag").read_text()
    assert stages[2].done == ("m42_field",)
    again = fetch_images(str(repo_dir), str(work))
    assert "andromeda" not in again.new  # rejected: never fetched again


def test_unanswered_review_publishes_nothing_then_the_cli_decides(
    tmp_path: Path, source: dict
) -> None:
    from typer.testing import CliRunner

    from astroflow.flows.cli import app

    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    _config(repo_dir, str(source["dir"]))
    state = ingest_images(
        str(repo_dir), str(work), review=True, review_timeout=3, return_state=True
    )
    assert state.is_failed()  # nobody reviewed: not green, and nothing published
    assert _published(repo_dir) == set()
    assert not (repo_dir / "index.wtml").exists()
    runner = CliRunner()
    listed = runner.invoke(app, ["review", str(repo_dir), str(work)])
    assert listed.exit_code == 0, listed.output
    assert "waiting" in listed.output
    assert runner.invoke(app, ["approve", str(repo_dir), str(work), "andromeda"]).exit_code == 0
    out = runner.invoke(
        app, ["reject", str(repo_dir), str(work), "m42_field", "--reason", "duplicate"]
    )
    assert out.exit_code == 0, out.output
    bad = runner.invoke(app, ["approve", str(repo_dir), str(work), "nope"])
    assert bad.exit_code == 2
    published = runner.invoke(app, ["publish", str(repo_dir), str(work)])
    assert published.exit_code == 0, published.output
    assert _published(repo_dir) == {"andromeda"}
    assert "duplicate" in (repo_dir / "m42_field" / "skip.flag").read_text()


def test_tiling_that_would_fill_the_disk_stops_first(
    tmp_path: Path, source: dict, small_disk
) -> None:
    from astroflow.storage.disk import MARGIN_BYTES
    from tests.conftest import fill_leaving

    repo_dir, work = tmp_path / "repo", small_disk(40) / "work"
    _config(repo_dir, str(source["dir"]))
    fetch_images(str(repo_dir), str(work))
    fill_leaving(work, MARGIN_BYTES + 200_000)
    process = process_images(str(repo_dir), str(work))
    by_input = {r.inputs[0]: r.message for r in process.errors.reports}
    assert "needs about" in by_input["m42_field"]
    assert "tiling file://" in by_input["m42_field"]
    assert not (work / "out_todo" / "m42_field").exists()  # nothing half-written


# -- WCS sidecars and press-image AVM (folder source) -----------------------------------------

NOTES_LIST = (
    "<avm:Spatial.Notes><rdf:Alt><rdf:li xml:lang='x-default'>Registered by hand</rdf:li>"
    "<rdf:li xml:lang='de'>Von Hand registriert</rdf:li></rdf:Alt></avm:Spatial.Notes>"
)


def _sidecar(path: Path, wcs, made_for: tuple[int, int] | None = None) -> None:
    from astropy.io import fits

    header = wcs.to_header()
    if made_for is not None:  # as Astrometry.net writes it
        header["IMAGEW"], header["IMAGEH"] = made_for
    fits.PrimaryHDU(header=header).writeto(path)


def _toasty_fits_wcs(image: Path, sidecar: Path, out: Path) -> ImageSet:
    """toasty 0.20.1's own ``tile-study --fits-wcs`` of the same picture and sidecar."""
    toasty = Path(sys.executable).parent / "toasty"
    subprocess.run(
        [str(toasty), "tile-study", "--fits-wcs", str(sidecar), "--outdir", str(out), str(image)],
        check=True,
        capture_output=True,
    )
    return Folder.from_file(str(out / "index_rel.wtml")).children[0].foreground_image_set


def test_sidecars_place_pictures_as_toasty_and_press_avm_is_read(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    src = tmp_path / "source"
    src.mkdir()
    # the sidecar counts y from the picture's first stored row (its top), as toasty reads it
    true_wcs = tan_wcs(400, 300, rotation_deg=15.0, crval=(150.0, 2.2), scale_deg=3e-4)
    write_avm_jpeg(src / "m101.jpg", 400, 300, rng, tan_wcs(400, 300, crval=(10.0, 10.0)))
    _sidecar(src / "m101.wcs.fits", true_wcs)
    # made for the picture at twice the size (Astrometry.net's IMAGEW/IMAGEH): rescaled
    big = tan_wcs(800, 600, rotation_deg=-40.0, crval=(201.0, -43.0), scale_deg=1e-4)
    write_avm_jpeg(src / "ngc5128.jpg", 400, 300, rng, None)
    _sidecar(src / "ngc5128_wcs.fits", big, made_for=(800, 600))
    # a press image whose AVM pyavm refuses (Spatial.Notes as a list)
    write_avm_jpeg(src / "gemini.jpg", 320, 240, rng, tan_wcs(320, 240), extra_xml=NOTES_LIST)
    write_fits(src / "lone_wcs.fits", 300, 300, rng, tan_wcs(300, 300))  # no picture: an image
    write_avm_jpeg(src / "odd.jpg", 400, 300, rng, None)
    _sidecar(src / "odd.wcs.fits", big, made_for=(800, 300))  # another aspect ratio
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    _config(repo_dir, str(src))
    fetch, process, _publish, _reindex = ingest_images(str(repo_dir), str(work))

    assert set(fetch.new) == {"m101", "ngc5128", "gemini", "lone_wcs", "odd"}
    assert set(process.done) == {"m101", "ngc5128", "gemini", "lone_wcs"}
    assert process.failed == ("odd",)
    (odd,) = process.errors.critical
    assert "aspect ratio" in odd.message
    assert "odd.jpg" in odd.message
    manifests = {
        i: json.loads((repo_dir / i / ImageLayout.MANIFEST).read_text())
        for i in ("m101", "ngc5128", "gemini", "lone_wcs")
    }
    assert manifests["m101"]["wcs_source"] == "sidecar"
    assert "m101.wcs.fits" in manifests["m101"]["wcs_note"]
    assert "wins over the picture's AVM tags" in manifests["m101"]["wcs_note"]
    assert manifests["ngc5128"]["wcs_source"] == "sidecar"
    assert "wins" not in manifests["ngc5128"]["wcs_note"]  # it had no AVM to win over
    assert manifests["lone_wcs"]["wcs_source"] == "fits-header"
    # the press image is placed; the refused tag is a noncritical report naming it
    assert manifests["gemini"]["wcs_source"] == "avm"
    assert manifests["gemini"]["ignored_avm"] == ["Spatial.Notes: is not a string or unicode"]
    (note,) = process.errors.noncritical
    assert note.inputs == ("gemini",)
    assert "Spatial.Notes" in note.message

    for image_id, sidecar in (("m101", "m101.wcs.fits"), ("ngc5128", "ngc5128_wcs.fits")):
        ours = Folder.from_file(str(repo_dir / image_id / "index_rel.wtml")).children[0]
        theirs = _toasty_fits_wcs(src / f"{image_id}.jpg", src / sidecar, tmp_path / image_id)
        for field in ("center_x", "center_y", "rotation_deg", "offset_x", "offset_y"):
            got = getattr(ours.foreground_image_set, field)
            assert got == pytest.approx(getattr(theirs, field), rel=1e-9, abs=1e-12), field
        assert ours.foreground_image_set.base_degrees_per_tile == pytest.approx(
            theirs.base_degrees_per_tile, rel=1e-9
        )


# -- ingest on Dask ----------------------------------------------------------------------------


def test_images_tiled_on_a_dask_cluster_equal_those_tiled_in_threads(
    tmp_path: Path, source: dict
) -> None:
    from distributed import Client, LocalCluster

    good = ("m42_field", "andromeda")
    for name in ("nowcs.fits", "corrupt.fits", "truncated.jpg", "sin.fits"):
        (source["dir"] / name).unlink()  # the failures are the threads tests' business
    threads_repo, dask_repo = tmp_path / "repo-threads", tmp_path / "repo-dask"
    _config(threads_repo, str(source["dir"]))
    _config(dask_repo, str(source["dir"]))
    ingest_images(str(threads_repo), str(tmp_path / "work-threads"))

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        stages = ingest_images(
            str(dask_repo), str(tmp_path / "work-dask"), task_runner=cluster.scheduler_address
        )
        ran = client.run_on_scheduler(
            lambda dask_scheduler: sorted(
                key for key in map(str, dask_scheduler.task_prefixes) if "process" in key
            )
        )
    assert set(stages[1].done) == set(good)
    assert ran, "no process-image task ran on the cluster"
    for image_id in good:
        ours = sorted(p.name for p in (dask_repo / image_id).iterdir())
        assert ours == sorted(p.name for p in (threads_repo / image_id).iterdir())
        for name in ours:
            if name.endswith(".png"):
                got = (dask_repo / image_id / name).read_bytes()
                assert got == (threads_repo / image_id / name).read_bytes(), name
        rel = (dask_repo / image_id / "index_rel.wtml").read_bytes()
        assert rel == (threads_repo / image_id / "index_rel.wtml").read_bytes()


def test_reindex_orders_images_toasty_published_by_when_they_were_written(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Images published by toasty have no LastUpdated: they are dated by when their
    index.wtml was written to the repository, and interleave with astroflow's by date."""
    import os
    import re
    from datetime import UTC, datetime

    src = tmp_path / "src"
    src.mkdir()
    for name in ("a1", "b2", "c3"):
        write_fits(src / f"{name}.fits", 120, 100, rng, tan_wcs(120, 100))
    repo_dir = tmp_path / "repo"
    _config(repo_dir, str(src))
    ingest_images(str(repo_dir), str(tmp_path / "work"))
    ours = (repo_dir / "c3" / "index.wtml").read_text()
    stamp = re.search(r'LastUpdated="([^"]+)"', ours)
    assert stamp
    assert datetime(2020, 1, 1, tzinfo=UTC) < datetime.fromisoformat(stamp.group(1))
    for image_id, year in (("a1", 2020), ("b2", 2099)):  # as toasty publishes them
        path = repo_dir / image_id / "index.wtml"
        path.write_text(re.sub(r' LastUpdated="[^"]*"', "", path.read_text()))
        when = datetime(year, 1, 1, tzinfo=UTC).timestamp()
        os.utime(path, (when, when))
    reindex_repository(str(repo_dir))
    root = Folder.from_text((repo_dir / "index.wtml").read_text())
    assert [c.name for c in root.children] == ["b2", "c3", "a1"]  # newest first


# -- tiles by pixels against toasty's own, route by route ---------------------------------------


def _toasty_test_data(name: str) -> Path:
    """A file of toasty's own test data."""
    import toasty

    return Path(toasty.__file__).parent / "tests" / name


def _toasty_tiles(ours: Path, theirs: Path) -> list[tuple[Path, Path]]:
    """Pairs of (astroflow's tile, toasty's tile) at the deepest level toasty's
    ``tile-study`` wrote (``theirs/L/y/y_x.*``)."""
    (level,) = [p for p in theirs.iterdir() if p.is_dir() and p.name.isdigit()]
    pairs = []
    for tile in sorted(level.glob("*/*_*.*")):
        y, x = tile.stem.split("_")
        pairs.append((ours / f"L{level.name}X{x}Y{y}.png", tile))
    return pairs


@pytest.mark.parametrize("route", ["sidecar", "avm", "fits"], ids=["sidecar", "avm", "fits"])
def test_tiles_equal_toastys_by_pixels_for_every_route(
    tmp_path: Path, rng: np.random.Generator, route: str
) -> None:
    """The deepest tiles of one input tiled by astroflow and by toasty 0.20.1's `tile-study`
    correlate over the pixels both have, and not once astroflow's rows are reversed: the
    placement and the pixels follow the same parity. The sidecar route uses toasty's own
    test picture and WCS sidecar (``geminiann11015a``)."""
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    extra: list[str] = []
    if route == "sidecar":
        shutil.copy(_toasty_test_data("geminiann11015a.jpg"), src / "gemini.jpg")
        shutil.copy(_toasty_test_data("geminiann11015a_wcs.fits"), src / "gemini_wcs.fits")
        image, image_id, extra = (
            src / "gemini.jpg",
            "gemini",
            ["--fits-wcs", str(src / "gemini_wcs.fits")],
        )
    elif route == "avm":
        wcs = tan_wcs(700, 500, rotation_deg=25.0, crval=(83.8, -5.4), scale_deg=2e-4)
        write_avm_jpeg(src / "tagged.jpg", 700, 500, rng, wcs)
        image, image_id, extra = src / "tagged.jpg", "tagged", ["--avm"]
    else:
        write_fits(src / "frame.fits", 700, 500, rng, tan_wcs(700, 500, rotation_deg=-30.0))
        image, image_id, extra = src / "frame.fits", "frame", ["--placeholder-thumbnail"]
    repo_dir = tmp_path / "repo"
    _config(repo_dir, str(src), extra="fits_tiles: png\n")  # FITS too: 8-bit PNG tiles
    ingest_images(str(repo_dir), str(tmp_path / "work"))
    toasty = Path(sys.executable).parent / "toasty"
    out = tmp_path / "toasty"
    subprocess.run(
        [str(toasty), "tile-study", *extra, "--outdir", str(out), str(image)],
        check=True,
        capture_output=True,
    )
    same, flipped, tiles = tile_agreement(_toasty_tiles(repo_dir / image_id, out))
    assert tiles >= 2
    assert same > 0.99, (same, flipped)
    assert flipped < 0.9, (same, flipped)  # (a smooth picture keeps some, noise none)


@pytest.mark.parametrize(
    "parity",
    ["bottom-up", "top-down"],
    ids=["fits-rows-bottom-up", "fits-rows-top-down"],
)
def test_a_fits_study_is_toastys_tiled_fits(
    tmp_path: Path, rng: np.random.Generator, parity: str
) -> None:
    """A FITS input becomes WWT's tiled FITS: the same tile files as toasty 0.20.1's
    tile-study and cascade of the same file, every value equal (NaN where toasty has no
    data, a blank block included), the same DATAMIN/DATAMAX in each tile, and the same WTML
    (FileType, Url, DataMin/DataMax and the pixel cut included); a PNG preview and the
    thumbnail beside them."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from tests.imagedata import toasty_fits_study

    src = tmp_path / "src"
    src.mkdir()
    wcs = tan_wcs(700, 500, rotation_deg=-30.0, crval=(202.5, 47.2), scale_deg=3e-4)
    if parity == "top-down":  # rows stored from the north: toasty flips them, so do we
        header = wcs.to_header()
        header["PC2_1"], header["PC2_2"] = -header.get("PC2_1", 0.0), -header.get("PC2_2", 1.0)
        header["CRPIX2"] = 501 - header["CRPIX2"]
        wcs = WCS(header)
    data = write_fits(src / "m51.fits", 700, 500, rng, wcs)
    data[40:90, 100:180] = np.nan  # blank pixels stay NaN
    data += np.linspace(0, 50, 700, dtype=np.float32)[None, :]
    fits.PrimaryHDU(data, header=wcs.to_header()).writeto(src / "m51.fits", overwrite=True)
    repo_dir = tmp_path / "repo"
    _config(repo_dir, str(src))
    ingest_images(str(repo_dir), str(tmp_path / "work"))
    ours = repo_dir / "m51"
    theirs = toasty_fits_study(src / "m51.fits", tmp_path / "toasty", "m51")

    names = sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*.fits"))
    assert names == sorted(str(p.relative_to(ours)) for p in ours.rglob("*.fits"))
    assert len(names) == 1 + 4 + 8  # levels 0-2: 700x500 covers 2 of 4 tile rows at level 2
    for name in names:
        with fits.open(ours / name) as a, fits.open(theirs / name) as b:
            np.testing.assert_array_equal(a[0].data, b[0].data, err_msg=name)
            for key in ("BITPIX", "NAXIS1", "NAXIS2", "DATAMIN", "DATAMAX"):
                assert a[0].header.get(key) == b[0].header.get(key), (name, key)
    assert np.isnan(fits.getdata(ours / names[-1])).any()  # padding and the blank block

    def attributes(path: Path, tag: str) -> dict[str, object]:
        element = next(ET.parse(path).getroot().iter(tag))
        out: dict[str, object] = {}
        for key, value in element.attrib.items():
            if key not in ("Name", "LastUpdated"):
                try:  # numbers to 1e-12 (the angles' last digits come from other formulas)
                    out[key] = pytest.approx(float(value), rel=1e-12, abs=1e-12)
                except ValueError:
                    out[key] = value
        return out

    for tag in ("ImageSet", "Place"):
        mine = attributes(ours / "index_rel.wtml", tag)
        peer = attributes(theirs / "index_rel.wtml", tag)
        assert set(mine) == set(peer), tag
        for key, value in peer.items():
            expected = value.expected if hasattr(value, "expected") else value
            assert mine[key] == expected, (tag, key)
    imgset = attributes(ours / "index_rel.wtml", "ImageSet")
    assert imgset["FileType"] == ".fits"
    assert {"DataMax", "PixelCutLow", "PixelCutHigh"} <= set(imgset)
    with Image.open(ours / "preview.png") as preview:
        assert preview.size == (256, 256)
    with Image.open(ours / "thumb.jpg") as thumb:
        assert thumb.size == (96, 45)


def test_switching_fits_tiles_retiles_with_force_and_leaves_no_stale_tiles(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """A FITS image published as PNG tiles, then ``fits_tiles: fits`` and a forced ingest:
    the image is published as tiled FITS and none of its PNG tiles is left behind."""
    src = tmp_path / "src"
    src.mkdir()
    write_fits(src / "ngc7000.fits", 700, 300, rng, tan_wcs(700, 300))
    repo_dir = tmp_path / "repo"
    _config(repo_dir, str(src), extra="fits_tiles: png\n")
    ingest_images(str(repo_dir), str(tmp_path / "work"))
    assert (repo_dir / "ngc7000" / "L0X0Y0.png").is_file()
    _config(repo_dir, str(src), extra="fits_tiles: fits\n")
    assert ingest_images(str(repo_dir), str(tmp_path / "work"))[2].done == ()  # not re-tiled
    publish = ingest_images(str(repo_dir), str(tmp_path / "work"), force=True)[2]
    assert publish.done == ("ngc7000",)
    files = {p.name for p in (repo_dir / "ngc7000").rglob("*") if p.is_file()}
    assert "0_0.fits" in files
    assert not [n for n in files if n.endswith(".png") and n != "preview.png"], files
    wtml = (repo_dir / "ngc7000" / "index.wtml").read_text()
    assert 'FileType=".fits"' in wtml
