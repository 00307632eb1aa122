"""A published study drawn by the WWT WebGL engine (``@wwtelescope/engine`` from npm) in
headless chromium: the marks of a picture placed by its WCS sidecar, and of a FITS image
published as tiled FITS, appear where the WCS puts them on the sky, and not where an
upside-down drawing would put them."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from astroflow.flows.ingest import ingest_images
from tests.conftest import ROOT
from tests.imagedata import tan_wcs

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

WIDTH, HEIGHT = 600, 400
#: (column, row) of each mark's centre in the picture as stored (row 0 on top); rows are
#: chosen so that no mark lies where another's mirror image (an upside-down drawing) would
MARKS = ((100, 80), (480, 120), (300, 330), (520, 350))
HALF = 3  # marks are 7x7 white squares


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (the engine's page and the repository)."""
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _picture(path: Path) -> None:
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for x, y in MARKS:
        pixels[y - HALF : y + HALF + 1, x - HALF : x + HALF + 1] = 255
    Image.fromarray(pixels).save(path)


def _blob(shot: np.ndarray, x: float, y: float, radius: int = 12) -> tuple[float, float] | None:
    """The centroid of the bright pixels within ``radius`` of screen point (x, y)."""
    x0, y0 = round(x), round(y)
    patch = shot[max(0, y0 - radius) : y0 + radius + 1, max(0, x0 - radius) : x0 + radius + 1]
    bright = np.argwhere(patch > 128)
    if bright.size == 0:
        return None
    cy, cx = bright.mean(axis=0)
    return max(0, x0 - radius) + cx, max(0, y0 - radius) + cy


@pytest.mark.parametrize("route", ["sidecar", "tiled-fits"], ids=["sidecar", "tiled-fits"])
def test_marks_are_drawn_where_the_wcs_puts_them(
    tmp_path: Path, site: tuple[Path, str], route: str
) -> None:
    """``sidecar``: a PNG picture placed by its WCS sidecar (a usual FITS WCS, east left and
    north up: positive parity, rotated), which applies to the picture as stored (row 0 its
    top row, as toasty reads a sidecar). ``tiled-fits``: a FITS image (rows bottom-up, its
    header's WCS) published as WWT's tiled FITS, which the engine stretches itself from the
    WTML's cut."""
    root, url = site
    src = tmp_path / "src"
    src.mkdir()
    wcs = tan_wcs(WIDTH, HEIGHT, rotation_deg=20.0, crval=(150.0, 20.0), scale_deg=2e-4)
    if route == "sidecar":
        _picture(src / "marks.png")
        fits.PrimaryHDU(header=wcs.to_header()).writeto(src / "marks_wcs.fits")
        header = fits.getheader(src / "marks_wcs.fits")
    else:
        values = np.random.default_rng(2).normal(100.0, 1.0, (HEIGHT, WIDTH)).astype(np.float32)
        for x, y in MARKS:  # array rows as FITS stores them (row 0 at the bottom)
            values[y - HALF : y + HALF + 1, x - HALF : x + HALF + 1] = 5000.0
        fits.PrimaryHDU(values, header=wcs.to_header()).writeto(src / "marks.fits")
        header = fits.getheader(src / "marks.fits")
    repo = root / "repo"
    repo.mkdir()
    (repo / "toasty-pipeline-config.yaml").write_text(
        f"source_type: folder\npublish_url_prefix: {url}repo/\nfolder_name: Marks\n"
        f"folder:\n  path: {src}\n"
    )
    fetch, process, publish, _ = ingest_images(str(repo), str(tmp_path / "work"))
    assert publish.done == ("marks",), (fetch, process)
    if route == "tiled-fits":
        assert (repo / "marks" / "0" / "0" / "0_0.fits").is_file()
    shutil.copy(
        ROOT / "node_modules" / "@wwtelescope" / "engine" / "src" / "index.js", root / "engine.js"
    )
    shutil.copy(ROOT / "tests" / "ui" / "wwt_engine.html", root / "page.html")

    sky = WCS(header)
    marks = [[float(v) for v in sky.pixel_to_world_values(x, y)] for x, y in MARKS]
    # where an upside-down drawing (rows reversed, placement kept) would show each mark
    mirrored = [[float(v) for v in sky.pixel_to_world_values(x, HEIGHT - 1 - y)] for x, y in MARKS]
    centre = [float(v) for v in sky.pixel_to_world_values((WIDTH - 1) / 2, (HEIGHT - 1) / 2)]
    query = urllib.parse.urlencode(
        {
            "wtml": f"{url}repo/marks/index.wtml",
            "name": "marks",
            "ra": centre[0],
            "dec": centre[1],
            "fov": 0.2,
            "marks": json.dumps(marks + mirrored),
        }
    )
    shot_path = tmp_path / "engine.png"
    browser = subprocess.run(
        [
            "node",
            str(ROOT / "tests" / "ui" / "wwt_engine.mjs"),
            f"{url}page.html?{query}",
            str(shot_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert browser.returncode == 0, browser.stdout + browser.stderr[-3000:]
    found = json.loads(browser.stdout.strip().splitlines()[-1])
    assert found["tiles"] >= 1, found
    with Image.open(shot_path) as img:
        shot = np.asarray(img.convert("L"), np.float64)
    assert shot.shape == (found["height"], found["width"]), found
    points = found["points"]
    for (x, y), mark in zip(points[: len(MARKS)], MARKS, strict=True):
        assert 0 <= x < shot.shape[1], (mark, x, y)  # on the screen
        assert 0 <= y < shot.shape[0], (mark, x, y)
        blob = _blob(shot, x, y)
        assert blob is not None, f"mark {mark} not drawn near screen point {(x, y)}"
        # within 2 screen pixels (0.9 arcsec each) of where the engine puts the WCS position
        assert np.hypot(blob[0] - x, blob[1] - y) < 2.0, (mark, blob, (x, y))
    for x, y in points[len(MARKS) :]:
        assert _blob(shot, x, y, radius=4) is None, f"something drawn at mirror point {(x, y)}"
