"""The Djangoplicity source against a fake archive on a real HTTP server (127.0.0.1): paging
to the 404, the records read at fetch time, rejects, bytes-repr text, hostile entries."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytest_httpserver import HTTPServer

from astroflow.models.errors import DownloadError, ProcessingError
from astroflow.models.ingest import Candidate, Reject
from astroflow.storage.ingest.sources.djangoplicity import (
    DjangoplicityConfig,
    DjangoplicitySource,
    fix_bytes_repr,
    images_on_page,
)
from tests.djangoplicity_archive import FakeArchive, bytes_repr


@pytest.fixture
def archive(httpserver: HTTPServer, tmp_path: Path) -> FakeArchive:
    return FakeArchive(httpserver, tmp_path, per_page=2)


def _source(archive: FakeArchive, **extra: object) -> DjangoplicitySource:
    config = DjangoplicityConfig(base_url=archive.base_url, channel_name="ESO", **extra)
    return DjangoplicitySource(config)


def test_pages_are_read_until_the_404(archive: FakeArchive, rng: np.random.Generator) -> None:
    for i in range(5):
        archive.add(f"eso230{i}a", 300, 200, rng)
    archive.serve()
    result = _source(archive).query()
    assert [c.id for c in result.candidates] == [f"eso230{i}a" for i in range(5)]
    assert not result.errors
    assert not result.rejects
    # pages 1-3 hold the five images, page 4 answers 404: nothing after it is asked for
    assert archive.requests_to("/archive/search/page/") == 4
    assert archive.requests_to("/api/json/") == 0  # records are read at fetch, not at query
    first = result.candidates[0]
    assert first.metadata_url == f"{archive.base_url}eso2300a/api/json/"
    assert first.image_url == ""


def test_search_page_name_and_tls_setting_are_honoured(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    archive = FakeArchive(httpserver, tmp_path)
    httpserver.expect_request(
        "/public/images/archive/search/seite/1/", query_string="type=Observation"
    ).respond_with_data("<script>\nvar images = [\n {id: 'x1'}\n];\n</script>")
    httpserver.expect_request("/public/images/archive/search/seite/2/").respond_with_data(
        "", status=404
    )
    result = _source(archive, search_page_name="seite", force_insecure_tls=False).query()
    assert [c.id for c in result.candidates] == ["x1"]
    assert result.candidates[0].insecure_tls is False
    assert DjangoplicityConfig(base_url="https://a.org/img", channel_name="c").base_url == (
        "https://a.org/img/"
    )


def _self_signed(folder: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1/localhost."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    alt = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(alt, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


@pytest.fixture
def https_archive(tmp_path: Path, rng: np.random.Generator) -> Iterator[FakeArchive]:
    """The fake archive behind HTTPS with a certificate nobody vouches for (as noirlab.edu's
    was for toasty)."""
    server = HTTPServer(host="127.0.0.1", ssl_context=_self_signed(tmp_path))
    server.start()
    archive = FakeArchive(server, tmp_path, per_page=2)
    archive.add("noirlab2301a", 300, 200, rng)
    archive.serve()
    yield archive
    server.clear()
    server.stop()


def test_force_insecure_tls_reads_an_unverified_archive_and_false_refuses_it(
    https_archive: FakeArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from astroflow.storage.remote import RemoteData

    monkeypatch.setenv("ASTROFLOW_HTTP_ATTEMPTS", "1")
    assert https_archive.base_url.startswith("https://")
    insecure = _source(https_archive, force_insecure_tls=True)
    (listed,) = insecure.query().candidates
    got = insecure.resolve(listed)
    assert isinstance(got, Candidate)
    assert got.insecure_tls
    # the image downloads through the remote data manager with the same choice
    remote = RemoteData(tmp_path / "cache", timeout=10, retries=1, verify_tls=False)
    path = remote.fetch("noirlab2301a.jpg", [got.image_url])
    assert path.read_bytes() == https_archive.bodies["noirlab2301a"]
    with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
        _source(https_archive, force_insecure_tls=False).query()
    strict = RemoteData(tmp_path / "cache2", timeout=10, retries=1)
    with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
        strict.fetch("noirlab2301a.jpg", [got.image_url])


def test_first_page_that_is_not_a_listing_is_a_clear_error(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    archive = FakeArchive(httpserver, tmp_path)
    httpserver.expect_request("/public/images/archive/search/page/1/").respond_with_data(
        "<html>maintenance</html>"
    )
    with pytest.raises(DownloadError, match="no 'var images") as info:
        _source(archive).query()
    assert "/archive/search/page/1/" in str(info.value)


def test_later_bad_page_ends_the_listing_and_keeps_what_was_read(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    archive = FakeArchive(httpserver, tmp_path)
    httpserver.expect_request("/public/images/archive/search/page/1/").respond_with_data(
        "var images = [\n{id: 'a1'}, {id: '../etc'}, {title: 'no id'},\n];"
    )
    httpserver.expect_request("/public/images/archive/search/page/2/").respond_with_data(
        "var images = [\n{id: 'a1'}, {id: 'a2'}\n];"  # a1 again: the archive grew meanwhile
    )
    httpserver.expect_request("/public/images/archive/search/page/3/").respond_with_data(
        "busy", status=503
    )
    result = _source(archive).query()
    assert [c.id for c in result.candidates] == ["a1", "a2"]
    messages = " | ".join(r.message for r in result.errors)
    assert "'..'" in messages or "invalid id" in messages  # the hostile id, by name
    assert "has no id" in messages
    assert "HTTP 503" in messages  # page 3 is reported, pages 1-2 kept
    assert any("/page/3/" in r.inputs[0] for r in result.errors)


def test_record_gives_the_original_image_metadata_and_wcs_fields(
    archive: FakeArchive, rng: np.random.Generator
) -> None:
    archive.add("eso1", 400, 300, rng, reference=(800, 600), Date="2023-04-05T12:00:00")
    archive.serve()
    source = _source(archive)
    listed = source.query().candidates[0]
    got = source.resolve(listed)
    assert isinstance(got, Candidate)
    assert got.image_url.endswith("/media/eso1.jpg")  # the Original, not the Large one
    assert got.image_ext == "jpg"
    assert got.title == "Nebula eso1"
    assert got.credits == "ESO/A. Astronomer &amp; &lt;b&gt;team&lt;/b&gt;"  # as toasty escapes
    assert got.description_on_place
    assert got.last_updated == "2023-04-05T12:00:00+00:00"  # naive is UTC
    assert json.loads(got.annotation) == {
        "channel": "ESO",
        "itemid": "eso1",
        "publishedUTCISO8601": "2023-04-05T12:00:00+00:00",
    }
    assert got.avm is not None
    assert got.avm["wcs_reference_dimension"] == [800, 600]
    assert got.metadata_url == ""


REJECTS = {
    "no-projection": ({"Spatial.CoordsystemProjection": None}, "does not have full WCS"),
    "sin": ({"Spatial.CoordsystemProjection": "SIN"}, "'SIN' is not TAN"),
    "no-scale": ({"Spatial.Scale": None}, "no Spatial.Scale"),
    "no-original": ({"Resources": [{"ResourceType": "Large", "URL": "/x.jpg"}]}, "Original"),
}


@pytest.mark.parametrize(("fields", "reason"), REJECTS.values(), ids=REJECTS.keys())
def test_record_without_what_we_need_is_a_reject(
    archive: FakeArchive, rng: np.random.Generator, fields: dict, reason: str
) -> None:
    archive.add("img1", 300, 200, rng, **fields)
    archive.serve()
    source = _source(archive)
    got = source.resolve(source.query().candidates[0])
    assert isinstance(got, Reject)
    assert reason in got.reason


def _original(url: str) -> dict:
    return {"Resources": [{"ResourceType": "Original", "URL": url}]}


HOSTILE = {
    "local-file": (_original("file:///etc/passwd"), "not an http(s) URL"),
    "no-extension": (_original("https://a.org/dl"), "image file extension"),
    "not-object": (None, "not a JSON object"),
}


@pytest.mark.parametrize(("fields", "message"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_record_is_an_error_naming_it(
    archive: FakeArchive, rng: np.random.Generator, fields: dict | None, message: str
) -> None:
    archive.add("img1", 300, 200, rng, **(fields or {}))
    if fields is None:
        archive.records["img1"] = ["a", "list"]  # type: ignore[assignment]
    archive.serve()
    source = _source(archive)
    with pytest.raises(ProcessingError, match=re.escape(message)) as info:
        source.resolve(source.query().candidates[0])
    assert "img1/api/json/" in str(info.value)


def test_unreadable_record_is_a_download_error(archive: FakeArchive, rng) -> None:
    archive.add("img1", 300, 200, rng)
    archive.serve(broken_record="img1")
    source = _source(archive)
    with pytest.raises(DownloadError, match="is not JSON"):
        source.resolve(source.query().candidates[0])


def test_bytes_reprs_are_decoded_and_lookalikes_kept() -> None:
    title = "Brown dwarf (artist\u2019s concept)"
    record = {"Title": bytes_repr(title), "List": [bytes_repr("é")], "Keep": "b'roken"}
    fixed = fix_bytes_repr(record)
    assert fixed == {"Title": title, "List": ["é"], "Keep": "b'roken"}
    assert fix_bytes_repr("bob's") == "bob's"


def test_listing_on_one_line_is_read() -> None:
    assert images_on_page("<script>var images = [{id: 'a'}, {id: 'b'}];</script>", "u") == [
        {"id": "a"},
        {"id": "b"},
    ]
