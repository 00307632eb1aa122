"""The same repository suite against a local folder, memory:// and Azurite."""

from __future__ import annotations

import io
import logging
import os
import pickle
import threading
import uuid
from pathlib import Path

import pytest

from astroflow.models.errors import InvalidKeyError, RepositoryError
from astroflow.storage import open_repository
from astroflow.storage.ingest.repository import Repository, RepositoryRef
from tests.conftest import AZURE_ENV


@pytest.fixture(params=["local", "memory", "azure"], ids=["local", "memory", "azure"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Repository:
    kind = request.param
    if kind == "local":
        return open_repository(tmp_path / "repo", backoff=0.01)
    if kind == "memory":
        return open_repository(f"memory://t{uuid.uuid4().hex}/prefix", backoff=0.01)
    container = request.getfixturevalue("azure_container")
    return open_repository(
        RepositoryRef(url=f"az://{container}/pre/fix", credential_env=AZURE_ENV), backoff=0.01
    )


def make_tree(root: Path, n: int = 12) -> dict[str, bytes]:
    files = {"index.wtml": b"<Folder/>", "index_rel.wtml": b"<Folder/>", "thumb.jpg": b"\xff\xd8x"}
    for i in range(n):
        files[f"L1X{i}Y0.png"] = bytes([i]) * (100 + i)
    files["sub/deep.json"] = b"{}"
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_write_read_exists(repo: Repository) -> None:
    assert not repo.exists("a/b.txt")
    repo.write_bytes("a/b.txt", b"hello")
    assert repo.exists("a/b.txt")
    assert repo.read_bytes("a/b.txt") == b"hello"
    repo.write_bytes("a/b.txt", b"replaced")
    assert repo.read_text("a/b.txt") == "replaced"


def test_read_missing_raises_file_not_found(repo: Repository) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        repo.read_bytes("nope.txt")


def test_open_read_and_write(repo: Repository) -> None:
    with repo.open("x/y.bin", "wb") as f:
        f.write(b"12345")
    with repo.open("x/y.bin") as f:
        assert f.read() == b"12345"


def test_list_folders_find_walk(repo: Repository) -> None:
    repo.write_bytes("m42/index.wtml", b"1")
    repo.write_bytes("m42/L0X0Y0.png", b"2")
    repo.write_bytes("ngc1/a/b.txt", b"3")
    repo.write_bytes("root.txt", b"4")
    assert repo.list_folders() == ["m42", "ngc1"]
    assert repo.find() == ["m42/L0X0Y0.png", "m42/index.wtml", "ngc1/a/b.txt", "root.txt"]
    assert repo.find("ngc1") == ["ngc1/a/b.txt"]
    walked = list(repo.walk())
    assert ("", ["m42", "ngc1"], ["root.txt"]) in walked
    assert ("ngc1/a", [], ["b.txt"]) in walked


def test_empty_repository_lists_nothing(repo: Repository) -> None:
    assert repo.list_folders() == []
    assert repo.find() == []


def test_put_tree_uploads_everything_marker_last(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    files = make_tree(src)
    order: list[str] = []
    lock = threading.Lock()
    original = repo._put_file

    def recording(local_path: str, key: str) -> int:
        size = original(local_path, key)
        with lock:
            order.append(key)  # completed writes, in completion order
        return size

    repo._put_file = recording  # type: ignore[method-assign]
    result = repo.put_tree(src, "img1")
    assert result.files == len(files)
    assert result.bytes == sum(len(v) for v in files.values())
    assert order[-1] == "img1/index.wtml"
    assert sorted(order) == sorted(f"img1/{k}" for k in files)
    for rel, data in files.items():
        assert repo.read_bytes(f"img1/{rel}") == data


def test_put_tree_failure_leaves_no_marker(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    make_tree(src)
    original = repo._put_file
    attempts: dict[str, int] = {}

    def failing(local_path: str, key: str) -> int:
        if key.endswith("L1X3Y0.png"):
            attempts[key] = attempts.get(key, 0) + 1
            raise RepositoryError("injected permanent upload failure")
        return original(local_path, key)

    repo._put_file = failing  # type: ignore[method-assign]
    with pytest.raises(RepositoryError, match=r"1 of \d+ files failed, marker not written"):
        repo.put_tree(src, "img2")
    assert not repo.exists("img2/index.wtml")
    assert repo.exists("img2/L1X2Y0.png")  # the others went through


def test_put_tree_retries_transient_errors(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    files = make_tree(src, n=2)
    fs = repo._fs
    calls = {"n": 0}

    class Flaky:
        """Delegates to the real filesystem; the first two writes raise ConnectionError."""

        def __getattr__(self, name: str):
            return getattr(fs, name)

        def _flaky(self, name: str, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] <= 2:
                raise ConnectionError("connection reset by peer (injected)")
            return getattr(fs, name)(*args, **kwargs)

        def pipe_file(self, *args, **kwargs):
            return self._flaky("pipe_file", *args, **kwargs)

        def put_file(self, *args, **kwargs):
            return self._flaky("put_file", *args, **kwargs)

    if repo.is_local:
        from astroflow.storage.ingest.repository import local as mod

        real_copy = mod.files.copy_atomic

        def flaky_copy(src_path: str, path: str) -> None:
            calls["n"] += 1
            if calls["n"] <= 2:
                raise ConnectionError("injected")
            real_copy(src_path, path)

        mod.files.copy_atomic = flaky_copy
        try:
            repo.put_tree(src, "img3")
        finally:
            mod.files.copy_atomic = real_copy
    else:
        repo._fs = Flaky()
        repo.max_workers = 1
        repo.put_tree(src, "img3")
    assert calls["n"] >= len(files) + 2
    assert repo.read_bytes("img3/index.wtml") == files["index.wtml"]


def test_put_tree_overwrites_and_prunes_stale_files(repo: Repository, tmp_path: Path) -> None:
    old = tmp_path / "old"
    make_tree(old, n=4)
    repo.put_tree(old, "img")
    new = tmp_path / "new"
    new.mkdir()
    (new / "index.wtml").write_bytes(b"<new/>")
    (new / "L0X0Y0.png").write_bytes(b"new tile")
    result = repo.put_tree(new, "img")
    assert result.pruned == len(make_tree(tmp_path / "count", n=4)) - 1
    assert repo.find("img") == ["img/L0X0Y0.png", "img/index.wtml"]
    assert repo.read_bytes("img/index.wtml") == b"<new/>"


def test_put_tree_requires_marker(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "nomarker"
    src.mkdir()
    (src / "a.png").write_bytes(b"x")
    with pytest.raises(RepositoryError, match="no marker"):
        repo.put_tree(src, "img")


def test_remove_tree(repo: Repository, tmp_path: Path) -> None:
    make_tree(tmp_path / "t", n=3)
    repo.put_tree(tmp_path / "t", "gone")
    repo.write_bytes("kept/a.txt", b"a")
    assert repo.remove_tree("gone") == 7
    assert repo.find() == ["kept/a.txt"]


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a\\b",
        "a//b",
        "a/",
        "./a",
        "a/\x00b",
        "a/\nb",
        "",
        "C:/x",
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "backslash",
        "empty-seg",
        "trailing",
        "dot",
        "nul",
        "newline",
        "empty",
        "drive",
    ],
)
def test_hostile_keys_refused(repo: Repository, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        repo.write_bytes(key, b"x")
    with pytest.raises(InvalidKeyError):
        repo.exists(key)


def test_local_write_is_atomic(tmp_path: Path) -> None:
    """A reader polling the file while it is rewritten never sees a torn file."""
    repo = open_repository(tmp_path)
    a, b = b"A" * 3_000_000, b"B" * 3_000_000
    repo.write_bytes("f.bin", a)
    stop = threading.Event()
    torn: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            data = (tmp_path / "f.bin").read_bytes()
            if data not in (a, b):
                torn.append(len(data))

    t = threading.Thread(target=reader)
    t.start()
    for i in range(30):
        repo.write_bytes("f.bin", a if i % 2 else b)
    stop.set()
    t.join()
    assert torn == []
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_check_reports_reachable_and_writable(repo: Repository) -> None:
    repo.ensure()
    repo.write_bytes("m1/index.wtml", b"x")
    result = repo.check()
    assert result.ok, result.error
    assert "m1" in result.entries
    assert repo.find() == ["m1/index.wtml"]  # probe cleaned up


def test_check_unreachable_local(tmp_path: Path) -> None:
    result = open_repository(tmp_path / "missing").check()
    assert not result.reachable
    assert not result.writable
    assert "does not exist" in (result.error or "")


@pytest.mark.parametrize(
    "url",
    ["az://Bad_Name/x", "az://ab/x", "az://-abc/x", "az://a--b/x", "abfs://" + "a" * 64],
    ids=["upper-underscore", "too-short", "leading-hyphen", "double-hyphen", "too-long"],
)
def test_invalid_container_names_refused(url: str) -> None:
    with pytest.raises(InvalidKeyError, match="container name"):
        open_repository(url)


@pytest.mark.parametrize(
    "url",
    ["ftp://host/x", "az://container/x?sig=abc", "az://user:pw@container/x"],
    ids=["scheme", "query", "credentials"],
)
def test_bad_urls_refused(url: str) -> None:
    with pytest.raises(RepositoryError):
        open_repository(url)


def test_missing_conn_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(RepositoryError, match="NOT_SET_ANYWHERE"):
        open_repository(RepositoryRef(url="az://container/x", credential_env="NOT_SET_ANYWHERE"))


@pytest.mark.azure
def test_azure_content_types(azure_container: str, azurite: str, tmp_path: Path) -> None:
    from azure.storage.blob import BlobServiceClient

    repo = open_repository(RepositoryRef(url=f"az://{azure_container}", credential_env=AZURE_ENV))
    make_tree(tmp_path / "t", n=1)
    (tmp_path / "t" / "x.fits").write_bytes(b"SIMPLE")
    repo.put_tree(tmp_path / "t", "img")
    repo.write_bytes("img/direct.json", b"{}")
    client = BlobServiceClient.from_connection_string(azurite).get_container_client(azure_container)
    types = {b.name: b.content_settings.content_type for b in client.list_blobs()}
    assert types["img/L1X0Y0.png"] == "image/png"
    assert types["img/thumb.jpg"] == "image/jpeg"
    assert types["img/index.wtml"] == "application/xml"
    assert types["img/sub/deep.json"] == "application/json"
    assert types["img/x.fits"] == "application/fits"
    assert types["img/direct.json"] == "application/json"
    assert not any("//" in name for name in types)


@pytest.mark.azure
def test_secret_never_leaks(
    azurite: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The account key appears in no repr, pickle, log record or exception."""
    from tests.conftest import AZURITE_KEY

    # A connection string pointing at a port where nothing listens: every call fails.
    bad = azurite.replace("BlobEndpoint=http://127.0.0.1:", "BlobEndpoint=http://127.0.0.1:1")
    bad = bad.split("BlobEndpoint=")[0] + "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    monkeypatch.setenv("MY_CONN", bad)
    monkeypatch.setenv("ASTROFLOW_AZURE_SDK_RETRIES", "0")
    caplog.set_level(logging.DEBUG)
    repo = open_repository(
        RepositoryRef(url="az://somecontainer/p", credential_env="MY_CONN"), retries=1, backoff=0
    )
    texts = [repr(repo), str(repo)]
    assert AZURITE_KEY.encode() not in pickle.dumps(repo)
    result = repo.check()
    assert not result.reachable
    texts.append(result.model_dump_json())
    with pytest.raises(RepositoryError) as info:
        repo.write_bytes("a.txt", b"x")
    err = info.value
    while err is not None:
        texts.append(str(err))
        texts.append(repr(err))
        err = err.__cause__ or err.__context__
    texts.extend(r.getMessage() for r in caplog.records)
    buf = io.StringIO()
    for text in texts:
        buf.write(text)
    blob = buf.getvalue()
    assert AZURITE_KEY not in blob
    assert AZURITE_KEY[:20] not in blob
    assert "MY_CONN" in repr(repo)


@pytest.mark.azure
def test_pickled_repository_reopens_from_environment(azure_container: str) -> None:
    repo = open_repository(RepositoryRef(url=f"az://{azure_container}/p", credential_env=AZURE_ENV))
    repo.write_bytes("k.txt", b"v")
    clone = pickle.loads(pickle.dumps(repo))
    assert clone.read_bytes("k.txt") == b"v"


@pytest.mark.parametrize(
    "conn",
    ["not a connection string SECRET-1", "x=SECRET-2;y", "=;=SECRET-3"],
    ids=["garbage", "no-value", "no-names"],
)
def test_malformed_azure_connection_string_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, conn: str
) -> None:
    monkeypatch.setenv("BROKEN_CONN", conn)
    with pytest.raises(RepositoryError) as info:
        open_repository(RepositoryRef(url="az://box/p", credential_env="BROKEN_CONN")).check()
    message = str(info.value)
    assert "BROKEN_CONN" in message
    assert "malformed" in message
    assert "SECRET" not in message  # nothing of the string is quoted
