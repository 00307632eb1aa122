"""The remote data manager against a real HTTP server on 127.0.0.1 (pytest-httpserver)."""

from __future__ import annotations

import hashlib
import socketserver
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from astroflow.models.errors import DownloadError, HashMismatchError
from astroflow.storage import RemoteData
from astroflow.storage.remote import NotCachedError

ROOT = Path(__file__).resolve().parents[2]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def remote(tmp_path: Path, database_backend: str) -> RemoteData:
    """A manager on SQLite (in its cache folder) and on PostgreSQL."""
    url = None if database_backend == "sqlite" else database_backend
    return RemoteData(tmp_path / "cache", url, timeout=2.0, retries=3, backoff=0.05)


def _hits(server: HTTPServer, path: str) -> int:
    return sum(1 for req, _ in server.log if req.path == path)


def test_503_then_success(remote: RemoteData, httpserver: HTTPServer) -> None:
    body = b"flat" * 100
    httpserver.expect_oneshot_request("/f").respond_with_data("busy", status=503)
    httpserver.expect_request("/f").respond_with_data(body)
    path = remote.fetch("flat.fits", [httpserver.url_for("/f")], sha(body))
    assert path.read_bytes() == body
    assert _hits(httpserver, "/f") == 2
    assert path.name == "flat.fits"  # name from the record, not from server headers


def test_every_mirror_failing(remote: RemoteData, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data("no", status=500)
    httpserver.expect_request("/b").respond_with_data("no", status=404)
    urls = [httpserver.url_for("/a"), httpserver.url_for("/b")]
    with pytest.raises(DownloadError) as info:
        remote.fetch("bias.fits", urls, sha(b"x"))
    message = str(info.value)
    assert "bias.fits" in message
    assert urls[0] in message
    assert urls[1] in message
    assert remote.versions() == []
    assert not list((remote.cache_dir / "files").glob("**/bias.fits"))
    assert not list((remote.cache_dir / "tmp").iterdir())


def test_first_mirror_down_second_fine(remote: RemoteData, httpserver: HTTPServer) -> None:
    body = b"dark" * 50
    httpserver.expect_request("/ok").respond_with_data(body)
    dead = "http://127.0.0.1:9/never"
    path = remote.fetch("dark.fits", [dead, httpserver.url_for("/ok")], f"sha256:{sha(body)}")
    assert path.read_bytes() == body
    assert remote.cached_urls() == [httpserver.url_for("/ok")]


def test_wrong_content_tries_next_mirror_then_fails(
    remote: RemoteData, httpserver: HTTPServer
) -> None:
    good = b"good data"
    httpserver.expect_request("/bad").respond_with_data(b"evil data")
    httpserver.expect_request("/good").respond_with_data(good)
    path = remote.fetch(
        "x.dat", [httpserver.url_for("/bad"), httpserver.url_for("/good")], sha(good)
    )
    assert path.read_bytes() == good
    with pytest.raises(HashMismatchError, match="does not match"):
        remote.fetch("y.dat", [httpserver.url_for("/bad")], sha(good))
    assert remote.versions("y.dat") == []


def test_md5_hashes(remote: RemoteData, httpserver: HTTPServer) -> None:
    body = b"md5 body"
    httpserver.expect_request("/m").respond_with_data(body)
    path = remote.fetch(
        "m.dat", [httpserver.url_for("/m")], hash=f"md5:{hashlib.md5(body).hexdigest()}"
    )
    assert path.read_bytes() == body
    with pytest.raises(ValueError, match="hex"):
        remote.fetch("m.dat", [httpserver.url_for("/m")], hash="md5:xyz")


def test_truncated_body_is_refused(remote: RemoteData, httpserver: HTTPServer) -> None:
    def short(_request: Request) -> Response:
        resp = Response(b"only part", status=200)
        resp.headers["Content-Length"] = "1000"
        resp.automatically_set_content_length = False
        return resp

    httpserver.expect_request("/t").respond_with_handler(short)
    with pytest.raises(DownloadError):
        remote.fetch("t.dat", [httpserver.url_for("/t")])
    assert remote.versions() == []


def test_slow_server_times_out(tmp_path: Path, httpserver: HTTPServer) -> None:
    def slow(_request: Request) -> Response:
        time.sleep(1.5)
        return Response(b"late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    remote = RemoteData(tmp_path / "c", timeout=0.5, retries=1)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="Timeout"):
        remote.fetch("s.dat", [httpserver.url_for("/slow")])
    assert time.monotonic() - start < 1.4


def test_parallel_then_second_round_makes_no_requests(
    remote: RemoteData, httpserver: HTTPServer
) -> None:
    items = []
    for i in range(20):
        body = f"file {i}".encode() * 100
        httpserver.expect_request(f"/p{i}").respond_with_data(body)
        items.append(
            {"name": f"p{i}.fits", "urls": [httpserver.url_for(f"/p{i}")], "sha256": sha(body)}
        )
    paths = remote.fetch_many(items)
    assert [p.name for p in paths] == [f"p{i}.fits" for i in range(20)]

    def count() -> int:
        return sum(1 for req, _ in httpserver.log if req.path.startswith("/p"))

    assert count() == 20
    # every download recorded once (threads commit their records together)
    records = remote.versions()
    assert sorted(r.name for r in records) == sorted(f"p{i}.fits" for i in range(20))
    assert all(r.version == 1 and r.is_default for r in records)
    assert len(remote.cached_urls()) == 20
    again = remote.fetch_many(items)
    assert again == paths
    assert count() == 20  # zero new requests


def test_override_then_back_to_default_and_history(
    remote: RemoteData, httpserver: HTTPServer
) -> None:
    v1, v2 = b"version one", b"version two"
    httpserver.expect_request("/v1").respond_with_data(v1)
    httpserver.expect_request("/v2").respond_with_data(v2)
    start = datetime.now(UTC) - timedelta(seconds=5)

    @remote.require("ref.fits", [httpserver.url_for("/v1")], sha(v1))
    def use() -> bytes:
        with remote.open("ref.fits") as f:
            return f.read()

    assert use() == v1
    with remote.override("ref.fits", [httpserver.url_for("/v2")], sha(v2)):
        assert remote.fetch("ref.fits").read_bytes() == v2
        assert remote.get("ref.fits").read_bytes() == v2
    assert remote.get("ref.fits").read_bytes() == v1  # default again, v2 kept
    versions = remote.versions("ref.fits")
    assert [v.version for v in versions] == [1, 2]
    assert [v.is_default for v in versions] == [True, False]
    assert remote.by_hash(sha(v2)).version == 2
    assert remote.latest("ref.fits").version == 2
    assert len(remote.by_modified_time("ref.fits", after=start)) == 2
    with pytest.raises(NotCachedError, match=r"'ref\.fits': none of its 2 version\(s\)"):
        remote.by_modified_time("ref.fits", after=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(NotCachedError, match="is not cached"):
        remote.by_modified_time("never.fits", after=start)
    with pytest.raises(NotCachedError, match="no cached file has the hash"):
        remote.by_hash(sha(b"never downloaded"))
    assert use() == v1
    assert _hits(httpserver, "/v1") == 1


def test_skip_hash_check(remote: RemoteData, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/c").respond_with_data(b"changed upstream")
    url = httpserver.url_for("/c")
    with remote.skip_hash_check():
        path = remote.fetch("c.dat", [url], sha(b"old"))
        assert remote.fetch("c.dat", [url], sha(b"old")) == path  # no second download
    assert path.read_bytes() == b"changed upstream"
    assert _hits(httpserver, "/c") == 1
    (version,) = remote.versions("c.dat")
    assert version.skip_hash
    assert version.hash == "sha256:" + sha(b"changed upstream")
    assert version.accepted_hash == "sha256:" + sha(b"old")
    # after the block: the accepted bytes are found by name, by either hash, and by a fetch
    assert remote.get("c.dat") == path
    assert remote.by_hash(sha(b"old")).path == path
    assert remote.by_hash(sha(b"changed upstream")).path == path
    assert remote.fetch("c.dat", [url], sha(b"old")) == path
    assert _hits(httpserver, "/c") == 1


def test_hash_mismatch_outside_skip_block_is_not_recorded(
    remote: RemoteData, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/d").respond_with_data(b"changed upstream")
    with pytest.raises(HashMismatchError):
        remote.fetch("d.dat", [httpserver.url_for("/d")], sha(b"old"))
    assert remote.versions("d.dat") == []


def test_verify_and_clear(remote: RemoteData, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v").respond_with_data(b"verify me")
    path = remote.fetch("v.dat", [httpserver.url_for("/v")], sha(b"verify me"))
    assert all(ok for _, ok, _ in remote.verify())
    path.write_bytes(b"verify ME")  # same size, corrupted
    assert remote.fetch("v.dat", [httpserver.url_for("/v")], sha(b"verify me")) == path
    assert _hits(httpserver, "/v") == 1  # trusted by size
    problems = [p for _, ok, p in remote.verify() if not ok]
    assert problems == ["hash differs"]
    remote.fetch("v.dat", [httpserver.url_for("/v")], sha(b"verify me"), verify=True)
    assert path.read_bytes() == b"verify me"  # re-downloaded
    assert remote.clear("v.dat") == 1
    assert not path.exists()
    assert remote.versions() == []


def test_database_deleted_between_calls(tmp_path: Path, httpserver: HTTPServer) -> None:
    remote = RemoteData(tmp_path / "cache", timeout=2.0, retries=3, backoff=0.05)
    body = b"persist"
    httpserver.expect_request("/d").respond_with_data(body)
    path = remote.fetch("d.dat", [httpserver.url_for("/d")], sha(body))
    for f in remote.cache_dir.glob("remote-data.db*"):
        f.unlink()
    again = remote.fetch("d.dat", [httpserver.url_for("/d")], sha(body))
    assert again == path
    assert _hits(httpserver, "/d") == 1  # the file on disk was adopted again
    assert remote.versions("d.dat")[0].hash == f"sha256:{sha(body)}"


_CHILD = """
import sys
from astroflow.storage import RemoteData
from astroflow.storage.remote import NotCachedError
r = RemoteData(sys.argv[1], timeout=10)
p = r.fetch("big.bin", [sys.argv[2]], sys.argv[3])
print(p.stat().st_size)
"""


def test_two_processes_download_once(tmp_path: Path, httpserver: HTTPServer) -> None:
    body = b"0123456789" * 200_000

    def slowish(_request: Request) -> Response:
        time.sleep(0.5)
        return Response(body)

    httpserver.expect_request("/big").respond_with_handler(slowish)
    args = [str(tmp_path / "shared"), httpserver.url_for("/big"), sha(body)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [str(len(body))] * 2
    assert _hits(httpserver, "/big") == 1


def test_file_urls_and_bad_names(remote: RemoteData, tmp_path: Path) -> None:
    src = tmp_path / "local.fits"
    src.write_bytes(b"local")
    assert remote.fetch("local.fits", [src.as_uri()], sha(b"local")).read_bytes() == b"local"
    for bad in ("../x", "a/b", ""):
        with pytest.raises(ValueError, match="data file name"):
            remote.fetch(bad, [src.as_uri()])


def test_data_cli(tmp_path: Path, httpserver: HTTPServer) -> None:
    from typer.testing import CliRunner

    from astroflow.flows.cli import app

    remote = RemoteData(tmp_path / "cache")

    httpserver.expect_request("/cli").respond_with_data(b"cli data")
    path = remote.fetch("cli.dat", [httpserver.url_for("/cli")], sha(b"cli data"))
    runner = CliRunner()
    cache = ["--cache-dir", str(remote.cache_dir)]
    out = runner.invoke(app, ["data", "list", *cache])
    assert out.exit_code == 0, out.output
    assert "cli.dat" in out.output
    assert runner.invoke(app, ["data", "verify", *cache]).exit_code == 0
    path.write_bytes(b"CLI DATA")
    bad = runner.invoke(app, ["data", "verify", *cache])
    assert bad.exit_code == 1
    assert "hash differs" in bad.output
    out = runner.invoke(app, ["data", "clear", *cache])
    assert "removed 1" in out.output


def test_proxy_from_environment(
    tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test server plays the proxy: a request for an unreachable host must go through it.
    body = b"via proxy"
    httpserver.expect_request("/px").respond_with_data(body)
    for var in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("http_proxy", httpserver.url_for("/").rstrip("/"))
    remote = RemoteData(tmp_path / "c", timeout=2.0, retries=1)
    path = remote.fetch("px.dat", ["http://data.example.invalid/px"], sha(body))
    assert path.read_bytes() == body
    assert _hits(httpserver, "/px") == 1
    # NO_PROXY names the host: straight there, which fails for this host
    monkeypatch.setenv("no_proxy", "data.example.invalid")
    direct = RemoteData(tmp_path / "d", timeout=2.0, retries=1)
    with pytest.raises(DownloadError, match=r"data\.example\.invalid"):
        direct.fetch("px2.dat", ["http://data.example.invalid/px"], sha(body))


def test_read_only_cache_serves_what_it_holds(
    tmp_path: Path, httpserver: HTTPServer, read_only_view
) -> None:
    httpserver.expect_request("/held").respond_with_data(b"held bytes")
    writer = RemoteData(tmp_path / "cache")
    held = writer.fetch("held.dat", [httpserver.url_for("/held")], sha(b"held bytes"))
    writer.close()
    reader = RemoteData(read_only_view(tmp_path / "cache"))
    again = reader.fetch("held.dat", [httpserver.url_for("/held")], sha(b"held bytes"))
    assert again.read_bytes() == b"held bytes"
    assert again.name == held.name
    assert [v.name for v in reader.versions()] == ["held.dat"]
    with pytest.raises(
        DownloadError, match=r"'new\.dat' .* is read-only; cached files can be read"
    ):
        reader.fetch("new.dat", [httpserver.url_for("/new")])
    assert _hits(httpserver, "/held") == 1
    assert _hits(httpserver, "/new") == 0


class _BadLengthHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\nConnection: close\r\n\r\nbody"
        )


def test_malformed_content_length_is_a_clear_error_and_the_next_mirror_is_tried(
    remote: RemoteData, httpserver: HTTPServer
) -> None:
    server = socketserver.TCPServer(("127.0.0.1", 0), _BadLengthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        bad = f"http://127.0.0.1:{server.server_address[1]}/f.dat"
        httpserver.expect_request("/f.dat").respond_with_data(b"mirror bytes")
        path = remote.fetch("f.dat", [bad, httpserver.url_for("/f.dat")], sha(b"mirror bytes"))
        assert path.read_bytes() == b"mirror bytes"
        with pytest.raises(DownloadError, match="malformed Content-Length 'lots'") as info:
            remote.fetch("g.dat", [bad])
        assert bad in str(info.value)
    finally:
        server.shutdown()
        server.server_close()
