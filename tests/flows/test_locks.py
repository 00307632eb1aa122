"""Two `astroflow ingest` commands on one work folder: the second is told who holds it and
does nothing, or waits for it; every image is published once and no `.partial` is left.

The first command is held inside its fetch (the feed's image download answers only when the
test says), so the two runs overlap by construction, not by timing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from astroflow.storage.locks import holder
from tests.imagedata import astropix_entry, write_avm_jpeg

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def _ingest(repo: Path, work: Path, **env: str) -> subprocess.Popen[str]:
    from prefect.settings import PREFECT_API_URL

    return subprocess.Popen(
        [str(Path(sys.executable).with_name("astroflow")), "ingest", str(repo), str(work)],
        env={**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_ingest_commands_on_one_work_folder(
    tmp_path: Path, httpserver: HTTPServer, rng: np.random.Generator
) -> None:
    jpeg = tmp_path / "img.jpg"
    write_avm_jpeg(jpeg, 320, 240, rng, None)
    body = jpeg.read_bytes()
    asked, answer = threading.Event(), threading.Event()

    def held_download(request: Request) -> Response:
        asked.set()
        answer.wait(300)
        return Response(body, content_type="image/jpeg")

    base = httpserver.url_for("")
    feed = [astropix_entry("A1", f"{base}img/a1.jpg"), astropix_entry("B2", f"{base}img/b2.jpg")]
    httpserver.expect_request("/feed.json").respond_with_json(feed)
    httpserver.expect_request("/img/a1.jpg").respond_with_handler(held_download)
    httpserver.expect_request("/img/b2.jpg").respond_with_data(body, content_type="image/jpeg")
    repo, work = tmp_path / "repo", tmp_path / "work"
    repo.mkdir()
    (repo / "toasty-pipeline-config.yaml").write_text(
        "source_type: astropix\npublish_url_prefix: https://x.org/\nfolder_name: Feed\n"
        f"astropix:\n  json_query_url: {base}feed.json\n"
    )
    first = _ingest(repo, work)
    try:
        if not asked.wait(180):
            first.kill()
            pytest.fail(f"the first ingest never asked for its image:\n{first.communicate()}")
        owner = holder(work)
        assert owner is not None
        assert owner["pid"] == str(first.pid)
        # a second command while the first is inside its fetch: told who, does nothing
        second = _ingest(repo, work)
        out, err = second.communicate(timeout=180)
        assert second.returncode == 2, out + err
        assert f"work folder {work.resolve()} is in use by flow run 'ingest-" in err
        assert f"pid {first.pid}" in err
        assert not (repo / "index.wtml").exists()  # it published nothing, reindexed nothing
        # a third that may wait: it starts once the first has ended, and finds nothing new
        third = _ingest(repo, work, ASTROFLOW_LOCK_WAIT_S="300")
        answer.set()
        out1, err1 = first.communicate(timeout=300)
        assert first.returncode == 0, out1 + err1
        out3, err3 = third.communicate(timeout=300)
        assert third.returncode == 0, out3 + err3
    finally:
        answer.set()
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
    assert "fetch: new=2 " in out1, out1
    assert "publish: new=0 skipped=0 done=2 failed=0" in out1, out1
    assert "fetch: new=0 " in out3, out3  # each image fetched, tiled and published once
    assert "publish: new=0 skipped=0 done=0 failed=0" in out3, out3
    root = (repo / "index.wtml").read_text()
    assert "noao_a1" in root
    assert "noao_b2" in root
    assert not list(work.rglob("*.partial"))
    assert holder(work) is None
