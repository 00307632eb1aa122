"""Shared HTTP plumbing: proxies from the environment, errors described by their cause."""

from __future__ import annotations

import pytest

from astroflow.storage import http

PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    return monkeypatch


def test_proxy_from_environment_per_scheme_and_bypass(clean_env: pytest.MonkeyPatch) -> None:
    assert http.proxy_for("https://data.example.org/x") is None
    clean_env.setenv("https_proxy", "http://proxy.lan:3128")
    clean_env.setenv("no_proxy", "archive.lan")
    assert http.proxy_for("https://data.example.org/x") == "http://proxy.lan:3128"
    assert http.proxy_for("http://data.example.org/x") is None  # no http_proxy
    assert http.proxy_for("https://archive.lan/x") is None


def test_refused_connection_is_described_by_its_cause(clean_env: pytest.MonkeyPatch) -> None:
    manager = http.pool(None, connect=1.0, read=1.0)
    with pytest.raises(http.Error) as info:
        manager.request("GET", "http://127.0.0.1:9/")  # discard port: nothing listens
    text = http.describe(info.value)
    assert text.startswith("NewConnectionError")
    assert "refused" in text.lower()
