"""Image sources: AstroPix feed queries against a real HTTP server on 127.0.0.1 (feed-level
failures, hostile entries), the folder source on real files and symbolic links."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from astroflow.models.errors import DownloadError, ProcessingError
from astroflow.models.settings import Settings
from astroflow.storage.ingest.sources.astropix import astropix_candidate, query_astropix
from astroflow.storage.ingest.sources.folder import query_folder

BAD_FEEDS = {
    "not-json": (b"<html>maintenance</html>", 200, "is not JSON"),
    "json-object": (b'{"images": []}', 200, "not a JSON list"),
    "not-found": (b"gone", 404, "HTTP 404"),
}


@pytest.mark.parametrize(("body", "status", "message"), BAD_FEEDS.values(), ids=BAD_FEEDS.keys())
def test_malformed_feed_is_a_clear_error(
    httpserver: HTTPServer, body: bytes, status: int, message: str
) -> None:
    httpserver.expect_request("/feed.json").respond_with_data(body, status=status)
    url = httpserver.url_for("/feed.json")
    with pytest.raises(DownloadError, match=message) as info:
        query_astropix(url)
    assert url in str(info.value)


@pytest.mark.parametrize("attempts", [None, 2], ids=["default", "setting"])
def test_server_errors_are_retried_then_reported(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, attempts: int | None
) -> None:
    if attempts is not None:
        monkeypatch.setenv("ASTROFLOW_HTTP_ATTEMPTS", str(attempts))
    httpserver.expect_request("/feed.json").respond_with_data("busy", status=503)
    url = httpserver.url_for("/feed.json")
    with pytest.raises(DownloadError, match="HTTP 503"):
        query_astropix(url)
    expected = attempts or Settings().http_attempts
    assert sum(1 for req, _ in httpserver.log if req.path == "/feed.json") == expected


def test_redirected_feed_is_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/feed.json")}
    )
    httpserver.expect_request("/feed.json").respond_with_json([{"title": "no ids"}])
    result = query_astropix(httpserver.url_for("/old"))
    assert result.candidates == []
    assert len(result.errors) == 1


# -- hostile feed entries ------------------------------------------------------------------

_GOOD = {
    "publisher_id": "nasa",
    "image_id": "m1",
    "wcs_projection": "TAN",
    "resource_url": "https://images.example.org/m1.jpg",
}
HOSTILE = {
    "file-url": ({"resource_url": "file:///etc/private.jpg"}, r"not an http\(s\) URL"),
    "local-path": ({"resource_url": "/home/someone/private.jpg"}, r"not an http\(s\) URL"),
    "dotdot": ({"resource_url": "../../private.jpg"}, r"not an http\(s\) URL"),
    "other-fs": ({"resource_url": "memory://bucket/private.jpg"}, r"not an http\(s\) URL"),
    "no-host": ({"resource_url": "http:///private.jpg"}, r"not an http\(s\) URL"),
    "no-extension": ({"resource_url": "https://x.org/get?id=3"}, "image file extension"),
    "empty-id": ({"image_id": ""}, "empty publisher_id or image_id"),
    "blank-publisher": ({"publisher_id": "  "}, "empty publisher_id or image_id"),
}


@pytest.mark.parametrize(("change", "message"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_feed_entry_is_refused(change: dict, message: str) -> None:
    with pytest.raises(ProcessingError, match=message) as info:
        astropix_candidate({**_GOOD, **change})
    if "resource_url" in change:
        assert change["resource_url"][:40] in str(info.value)  # names the user's input


def test_ids_equal_but_for_case_are_both_reported(httpserver: HTTPServer) -> None:
    feed = [
        {**_GOOD, "image_id": "M42"},
        {**_GOOD, "image_id": "m42"},
        {**_GOOD, "image_id": "m43"},
    ]
    httpserver.expect_request("/feed.json").respond_with_json(feed)
    result = query_astropix(httpserver.url_for("/feed.json"))
    assert [c.id for c in result.candidates] == ["nasa_m43"]
    by_input = {r.inputs[0]: r.message for r in result.errors}
    assert set(by_input) == {"nasa/M42", "nasa/m42"}
    assert "nasa/m42" in by_input["nasa/M42"]
    assert all(r.expected for r in result.errors)


# -- the folder source: collisions and links -------------------------------------------------


def test_folder_reports_every_file_of_a_shared_id(tmp_path: Path) -> None:
    (tmp_path / "onepix.fits").write_bytes(b"x")
    (tmp_path / "onepix.png").write_bytes(b"x")
    (tmp_path / "other.png").write_bytes(b"x")
    result = query_folder(str(tmp_path))
    assert [c.id for c in result.candidates] == ["other"]
    inputs = sorted(Path(r.inputs[0]).name for r in result.errors)
    assert inputs == ["onepix.fits", "onepix.png"]


def test_folder_follows_links_inside_and_reports_the_others(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "real.png").write_bytes(b"inside")
    (tmp_path / "private.png").write_bytes(b"outside")
    (src / "inside.png").symlink_to(src / "sub" / "real.png")
    (src / "outside.png").symlink_to(tmp_path / "private.png")
    (src / "dangling.png").symlink_to(src / "missing.png")
    (src / "loop-a.png").symlink_to(src / "loop-b.png")
    (src / "loop-b.png").symlink_to(src / "loop-a.png")
    (src / "dir.png").symlink_to(src / "sub")
    result = query_folder(str(src))
    (inside,) = result.candidates
    assert inside.id == "inside"
    assert inside.image_url.endswith("/sub/real.png")  # what is read is what was checked
    problems = {Path(r.inputs[0]).name: r.message for r in result.errors}
    assert set(problems) == {"outside.png", "dangling.png", "loop-a.png", "loop-b.png"}
    assert "outside the source folder" in problems["outside.png"]
    assert "broken symbolic link or link loop" in problems["dangling.png"]
    assert "broken symbolic link or link loop" in problems["loop-a.png"]


def test_feed_that_never_answers_times_out_as_configured(
    blackhole: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTROFLOW_HTTP_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("ASTROFLOW_HTTP_ATTEMPTS", "2")
    url = f"http://127.0.0.1:{blackhole}/feed.json"
    with pytest.raises(DownloadError, match="ReadTimeoutError") as info:
        query_astropix(url)
    assert url in str(info.value)
    assert "\n" not in str(info.value)
