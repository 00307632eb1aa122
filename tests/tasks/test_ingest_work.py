"""The ingest tasks' bodies without Prefect: one image fetched, processed, published and
indexed by plain calls, each outcome as a later call sees it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astroflow.models.errors import WcsError
from astroflow.storage.ingest.layout import ImageLayout
from astroflow.storage.ingest.repository import RepositoryRef
from astroflow.storage.ingest.sources.folder import query_folder
from astroflow.storage.ingest.workdir import WorkDir
from astroflow.tasks.ingest_work import (
    ensure_source,
    fetch_image,
    open_stage,
    process_image,
    publish_image,
    read_published_place,
    record_rejects,
    write_skip_flag,
)
from tests.imagedata import tan_wcs, write_fits


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, RepositoryRef, str]:
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(4)
    write_fits(src / "m42.fits", 600, 400, rng, tan_wcs(600, 400))
    write_fits(src / "nowcs.fits", 64, 64, rng, None)
    repo = RepositoryRef(url=str(tmp_path / "repo"))
    assert ensure_source(repo, "folder", {"path": str(src)}, "https://x.org/", "Night")
    assert not ensure_source(repo, "folder", {"path": str(src)}, "https://x.org/", "Night")
    return src, repo, str(tmp_path / "work")


def test_one_image_through_every_stage(setup: tuple[Path, RepositoryRef, str]) -> None:
    src, repo, work = setup
    (candidate,) = [c for c in query_folder(str(src)).candidates if c.id == "m42"]
    assert open_stage(work, "cache_todo") == []
    assert fetch_image(candidate, repo, work) == "new"
    assert fetch_image(candidate, repo, work) == "pending"  # fetched, not published
    assert open_stage(work, "out_todo", "cache_todo") == ["m42"]
    manifest = process_image("m42", work, "https://x.org/")
    assert (manifest.width, manifest.height, manifest.wcs_source) == (600, 400, "fits-header")
    assert read_published_place("m42", repo) is None  # processed, not published
    result = publish_image("m42", repo, work)
    # tiles, thumbnail, preview (a FITS input: tiled FITS), two WTML, manifest
    assert result.files == manifest.tile_count + 5
    place = read_published_place("m42", repo)
    assert place is not None
    assert place.image_id == "m42"
    assert fetch_image(candidate, repo, work) == "done"
    write_skip_flag(repo, "m42", "no longer wanted")
    assert fetch_image(candidate, repo, work) == "ignored"
    flag = repo.open().read_text(ImageLayout("m42").skip_flag)
    assert flag == "no longer wanted\n"


def test_a_failed_process_leaves_its_input_and_the_error(
    setup: tuple[Path, RepositoryRef, str],
) -> None:
    src, repo, work = setup
    (candidate,) = [c for c in query_folder(str(src)).candidates if c.id == "nowcs"]
    assert fetch_image(candidate, repo, work) == "new"
    with pytest.raises(WcsError, match=r"nowcs\.fits"):
        process_image("nowcs", work, "https://x.org/")
    wd = WorkDir(work)
    assert wd.ids("cache_todo") == ["nowcs"]
    assert "WcsError" in (wd.path("cache_todo", "nowcs") / "error.txt").read_text()
    assert wd.ids("out_todo") == []


def test_rejects_are_recorded_once_per_id(setup: tuple[Path, RepositoryRef, str]) -> None:
    from astroflow.models.ingest import Reject

    _, _, work = setup
    open_stage(work, "cache_todo")
    record_rejects(work, [Reject(id="a", source_id="A", reason="not TAN")])
    record_rejects(work, [Reject(id="a", source_id="A", reason="still not TAN")])
    assert {i: r.reason for i, r in WorkDir(work).rejects().items()} == {"a": "still not TAN"}
