"""A repository configured with toasty's ``djangoplicity`` source, ingested end to end from a
fake archive on a real HTTP server, and the WTML compared field by field with what toasty
0.20.1 itself writes for the same archive (its own fetch and process, run here)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from wwt_data_formats.folder import Folder

from astroflow.flows.ingest import ignore_rejects, ingest_images, stage_sections
from astroflow.models.ingest import ImageManifest
from astroflow.storage.ingest.layout import ImageLayout
from tests.djangoplicity_archive import FakeArchive, bytes_repr
from tests.imagedata import tile_agreement

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

TITLE = "Brown dwarf (artist\u2019s concept)"


@pytest.fixture
def archive(httpserver: HTTPServer, tmp_path: Path, rng: np.random.Generator) -> FakeArchive:
    files = tmp_path / "archive-files"
    files.mkdir()
    archive = FakeArchive(httpserver, files, per_page=2)
    archive.add("eso2301a", 640, 480, rng)
    # the record describes a picture 4x larger than the Original served: rescaled as toasty
    archive.add("eso2302a", 400, 300, rng, reference=(1600, 1200))
    archive.add("eso2303a", 300, 280, rng, **{"Spatial.CoordsystemProjection": None})
    archive.add(
        "heic2405a",
        500,
        260,
        rng,
        Title=bytes_repr(TITLE),
        Credit=bytes_repr("ESA/Hubble \u00e9quipe"),
        **{"Spatial.Rotation": -33.0},
    )
    archive.add("noao-02274", 520, 300, rng, **{"Spatial.Scale": [-3e-4, ""]})  # as seen there
    archive.serve()
    return archive


def _toasty_wtml(archive: FakeArchive, image_id: str, where: Path) -> Folder:
    """toasty's own fetch + process of ``image_id`` from the same archive."""
    from toasty.builder import Builder
    from toasty.pipeline.djangoplicity import DjangoplicityImageSource
    from toasty.pyramid import PyramidIO

    source = DjangoplicityImageSource.deserialize(
        {"base_url": archive.base_url, "channel_name": "ESO"}
    )
    cache, out = where / "cache" / image_id, where / "out" / image_id
    cache.mkdir(parents=True)
    source.fetch_candidate(image_id, None, str(cache))
    builder = Builder(PyramidIO(str(out), scheme="LXY", default_format="png"))
    source.process(image_id, None, str(cache), builder)
    builder.write_index_rel_wtml()
    return Folder.from_file(str(out / "index_rel.wtml"))


PLACE_FIELDS = ("name", "ra_hr", "dec_deg", "zoom_level", "description", "annotation")
IMAGESET_FIELDS = (
    "name", "center_x", "center_y", "rotation_deg", "base_degrees_per_tile", "offset_x",
    "offset_y", "tile_levels", "credits", "credits_url", "projection", "bottoms_up",
    "width_factor", "file_type", "data_set_type", "url", "thumbnail_url",
)  # fmt: skip


def _same(ours: object, theirs: object) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)
    return ours == theirs


def test_djangoplicity_archive_ingests_as_toasty_places_it(
    tmp_path: Path, archive: FakeArchive
) -> None:
    repo_dir, work = tmp_path / "repo", tmp_path / "work"
    repo_dir.mkdir()
    (repo_dir / "toasty-pipeline-config.yaml").write_text(
        "source_type: djangoplicity\npublish_url_prefix: https://data.example.org/eso/\n"
        "folder_name: ESO\nfolder_thumbnail_url: https://data.example.org/eso/thumb.jpg\n"
        f"djangoplicity:\n  base_url: {archive.base_url}\n  channel_name: ESO\n"
    )
    fetch, process, publish, reindex = ingest_images(str(repo_dir), str(work))

    good = {"eso2301a", "eso2302a", "heic2405a", "noao-02274"}
    assert set(fetch.new) == good
    assert fetch.rejected == ("eso2303a",)
    assert "full WCS" in fetch.reject_reasons["eso2303a"]
    # the run's report says which image the source offered that cannot be ingested, and why
    rejects = next(s for s in stage_sections([fetch]) if "Rejected by the source" in s)
    assert "| eso2303a | image does not have full WCS" in rejects
    assert not fetch.errors
    assert set(process.done) == good
    assert set(publish.done) == good
    assert set(reindex.done) == good
    assert archive.requests_to("/archive/search/page/") == 4  # 3 pages and the 404

    for image_id in sorted(good):
        ours = Folder.from_file(str(repo_dir / image_id / "index_rel.wtml")).children[0]
        theirs = _toasty_wtml(archive, image_id, tmp_path / "toasty").children[0]
        for name in PLACE_FIELDS:
            assert _same(getattr(ours, name), getattr(theirs, name)), (image_id, name)
        ours_set, theirs_set = ours.foreground_image_set, theirs.foreground_image_set
        for name in IMAGESET_FIELDS:
            got, want = getattr(ours_set, name), getattr(theirs_set, name)
            assert _same(got, want), (image_id, name, got, want)
        manifest = ImageManifest.model_validate_json(
            (repo_dir / image_id / ImageLayout.MANIFEST).read_text()
        )
        assert manifest.wcs_source == "feed"
        # and the pixels: toasty's tiles (its deepest level) are ours, rows the same way up
        theirs_dir = tmp_path / "toasty" / "out" / image_id
        level = ours_set.tile_levels
        pairs = [
            (repo_dir / image_id / tile.name, tile)
            for tile in sorted(theirs_dir.glob(f"L{level}X*Y*.png"))
        ]
        same, flipped, tiles = tile_agreement(pairs)
        assert tiles >= 1, image_id
        assert same > 0.99, (image_id, same, flipped)
        assert flipped < 0.9, (image_id, same, flipped)
    heic = Folder.from_file(str(repo_dir / "heic2405a" / "index_rel.wtml")).children[0]
    assert heic.name == TITLE  # the bytes repr decoded
    assert "\u00e9quipe" in heic.foreground_image_set.credits

    # a rerun reads no record of a published image: only the reject's, which is rejected again
    before = archive.requests_to("/api/json/")
    fetch2, *_ = ingest_images(str(repo_dir), str(work))
    assert fetch2.new == ()
    assert fetch2.rejected == ("eso2303a",)
    assert archive.requests_to("/api/json/") - before == 1
    written, _ = ignore_rejects(str(repo_dir), str(work))
    assert written == ["eso2303a"]
    assert "full WCS" in (repo_dir / "eso2303a" / "skip.flag").read_text()
