"""AstroPix feed queries against a real HTTP server on 127.0.0.1: feed-level failures."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from astroflow.models.errors import DownloadError
from astroflow.storage.sources import query_astropix

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


def test_server_errors_are_retried_then_reported(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.json").respond_with_data("busy", status=503)
    url = httpserver.url_for("/feed.json")
    with pytest.raises(DownloadError, match="HTTP 503"):
        query_astropix(url)
    assert sum(1 for req, _ in httpserver.log if req.path == "/feed.json") == 4


def test_redirected_feed_is_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/feed.json")}
    )
    httpserver.expect_request("/feed.json").respond_with_json([{"title": "no ids"}])
    result = query_astropix(httpserver.url_for("/old"))
    assert result.candidates == []
    assert len(result.errors) == 1
