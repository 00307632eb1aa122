"""The solve step end to end: a night whose science frames come from a star catalogue,
solved by astrometry.net (Debian's solve-field) with an index built from that catalogue by
its own build-astrometry-index, published to WWT at the solution."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from wwt_data_formats.folder import Folder
from wwt_data_formats.imageset import ImageSet
from wwt_data_formats.place import Place

from astroflow.processing.synthetic import render_stars, star_catalogue
from astroflow.processing.wcs import orient_top_down, study_geometry
from astroflow.storage.organiser.frames import write_raw_frame

# astrometry.net (solve-field, build-astrometry-index) comes from Debian: .ci/run installs it
pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
RA, DEC = 150.0, 2.0
SHAPE = (512, 512)
SCALE = 2.0 / 3600  # deg/pixel


def _tan(ra: float, dec: float, rotation_deg: float) -> dict[str, object]:
    """A TAN header (FITS convention, east left) of the test camera."""
    t = np.radians(rotation_deg)
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRVAL1": ra,
        "CRVAL2": dec,
        "CRPIX1": (SHAPE[1] + 1) / 2,
        "CRPIX2": (SHAPE[0] + 1) / 2,
        "CD1_1": -SCALE * np.cos(t),
        "CD1_2": SCALE * np.sin(t),
        "CD2_1": SCALE * np.sin(t),
        "CD2_2": SCALE * np.cos(t),
        "RADESYS": "ICRS",
    }


TRUE = _tan(RA, DEC, 20.0)
OFF = _tan(RA, DEC + 5.0 / 60, 21.0)  # 5 arcmin north and 1 degree of rotation off


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A catalogue of 2000 stars within 0.6 deg and astrometry.net index files built from
    it (quads of 4-11 arcmin for the 17-arcmin frames)."""
    from astropy.table import Table

    folder = tmp_path_factory.mktemp("astrometry")
    catalogue = star_catalogue(RA, DEC, 0.6, 2000)
    Table(catalogue).write(folder / "catalogue.fits")
    out = folder / "index"
    out.mkdir()
    for scale in (2, 3, 4):
        subprocess.run(
            [
                "build-astrometry-index",
                "-i", str(folder / "catalogue.fits"),
                "-o", str(out / f"index-test-{scale:02d}.fits"),
                "-P", str(scale),
                "-S", "MAG",
                "-A", "RA",
                "-D", "DEC",
                "-I", str(2800 + scale),
                "-E",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return out, catalogue


def _night(root: Path, catalogue: dict, rng: np.random.Generator) -> None:
    """Biases, darks, flats and three science frames of one night: ``off`` (its header WCS
    5 arcmin and 1 degree off), ``blind`` (no WCS at all) and ``blank`` (no stars, the true
    WCS in its header)."""
    root.mkdir()
    stars = render_stars(catalogue, TRUE, SHAPE)

    def frame(name: str, imagetyp: str, exptime: float, mjd: float, signal, extra=None) -> None:
        electrons = np.clip(np.asarray(signal, np.float64) * 1.5, 0, None)
        adu = rng.poisson(np.broadcast_to(electrons, SHAPE)) / 1.5
        data = 1000.0 + adu + 0.05 * exptime + rng.normal(0, 10.0, SHAPE)
        header = {
            "IMAGETYP": imagetyp,
            "EXPTIME": exptime,
            "MJD-OBS": mjd,
            "INSTRUME": "SOLVECAM",
            "XBINNING": 1,
            "YBINNING": 1,
            "GAIN": 1.5,
            "READOUTM": "Normal",
            "OBJECT": name,
            "SATURATE": 65000.0,
            "FILTER": "R",
            **(extra or {}),
        }
        write_raw_frame(root / f"{name}.fits", np.clip(data, 0, 65535).astype(np.float32), header)

    mjd = 61200.1
    for i in range(3):
        frame(f"bias_{i}", "Bias Frame", 0.0, mjd + i * 1e-4, 0.0)
        frame(f"dark_{i}", "Dark Frame", 120.0, mjd + 0.01 + i * 1e-4, 0.0)
        frame(f"flat_{i}", "Flat Field", 3.0, mjd + 0.02 + i * 1e-4, 18000.0)
    frame("sci_off", "Light Frame", 120.0, mjd + 0.1, 300.0 + stars, OFF)
    frame("sci_blind", "Light Frame", 120.0, mjd + 0.11, 300.0 + stars)
    frame("sci_blank", "Light Frame", 120.0, mjd + 0.12, 300.0, TRUE)


def _reduced(ws: Path, name: str) -> Path:
    (path,) = (ws / "sessions" / "base" / "reduced").rglob(f"{name}_RED.fits")
    return path


def test_a_night_is_solved_and_published_where_the_stars_are(
    tmp_path: Path, index_dir: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from astroflow.flows.night import process_night

    folder, catalogue = index_dir
    monkeypatch.setenv("ASTROFLOW_ASTROMETRY_INDEX_DIR", f"/nonexistent:{folder}")
    ws, repo = tmp_path / "ws", tmp_path / "repo"
    _night(ws, catalogue, np.random.default_rng(28))
    summary = process_night(str(ws), str(repo))
    assert summary.cascade.failed == (), summary.cascade.reasons

    truth = WCS(TRUE)
    x_true, y_true = truth.all_world2pix(catalogue["RA"], catalogue["DEC"], 0)
    inside = (x_true > 5) & (x_true < SHAPE[1] - 5) & (y_true > 5) & (y_true < SHAPE[0] - 5)
    for name in ("sci_off", "sci_blind"):
        header = fits.getheader(_reduced(ws, name))
        assert header["AF_WCSRC"] == "astrometry", name
        assert header["CTYPE1"] == "RA---TAN"  # TAN unless the rules ask for SIP
        assert header["AF_ASRMS"] < 0.5  # arcsec
        assert header["AF_ASNST"] >= 10  # matched stars
        assert header["AF_ASIDX"].startswith("index-test-")
        assert any(line.startswith("astrometry: TAN solution") for line in header["HISTORY"])
        # every catalogue star lands within 1 arcsec of where it was drawn
        x, y = WCS(header).all_world2pix(catalogue["RA"][inside], catalogue["DEC"][inside], 0)
        offsets = np.hypot(x - x_true[inside], y - y_true[inside]) * SCALE * 3600
        assert offsets.max() < 1.0, (name, offsets.max())

    # the blank frame: not solved, its header WCS kept, a noncritical report; published too
    blank = fits.getheader(_reduced(ws, "sci_blank"))
    assert "AF_WCSRC" not in blank
    assert blank["CRVAL2"] == pytest.approx(DEC)
    notes = next(o for o in summary.cascade.outcomes if o.product.startswith("sci_blank")).notes
    assert notes
    assert notes[0][0] == "AstrometryError"
    assert "not solved" in notes[0][1]
    assert "header WCS kept" in notes[0][1]

    # published at the solution: the WTML equals wwt_data_formats' placement of the true WCS
    published = set(summary.ingest[2].done)
    assert {"sci_off_red", "sci_blind_red", "sci_blank_red"} <= published
    for image_id in ("sci_off_red", "sci_blind_red"):
        manifest = (repo / image_id / "astroflow-manifest.json").read_text()
        assert '"wcs_source": "astrometry"' in manifest
        ours = Folder.from_file(str(repo / image_id / "index_rel.wtml"))
        imgset = ours.children[0].foreground_image_set
        # the true WCS about the solution's reference pixel (WTML centres on it)
        solved = fits.getheader(_reduced(ws, image_id.removesuffix("_red")))
        ref = (solved["CRPIX1"], solved["CRPIX2"])
        ((ra, dec),) = truth.all_pix2world([[ref[0] - 1, ref[1] - 1]], 0)
        same = {**TRUE, "CRPIX1": ref[0], "CRPIX2": ref[1], "CRVAL1": ra, "CRVAL2": dec}
        header, _ = orient_top_down(same, SHAPE[0])
        peer = ImageSet()
        peer.tile_levels = study_geometry(SHAPE[1], SHAPE[0])[1]
        peer.set_position_from_wcs(header, SHAPE[1], SHAPE[0], place=Place())
        assert imgset.center_x == pytest.approx(peer.center_x, abs=1 / 3600)
        assert imgset.center_y == pytest.approx(peer.center_y, abs=1 / 3600)
        assert imgset.rotation_deg == pytest.approx(peer.rotation_deg, abs=0.01)
        assert imgset.offset_x == pytest.approx(peer.offset_x, rel=1e-3)
        assert imgset.offset_y == pytest.approx(peer.offset_y, rel=1e-3)
        assert imgset.base_degrees_per_tile == pytest.approx(peer.base_degrees_per_tile, rel=1e-3)


def test_a_missing_index_is_named_and_the_night_goes_on(
    tmp_path: Path, index_dir: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With solving asked for in the rules and no index files where the setting points: one
    clear noncritical report per frame naming the setting; every frame is still reduced."""
    import yaml

    from astroflow.flows.cascade import calibration_cascade
    from astroflow.flows.organiser import prepare_workspace
    from astroflow.models.rules import RULESETS_DIR

    _, catalogue = index_dir
    empty = tmp_path / "no-index"
    empty.mkdir()
    monkeypatch.setenv("ASTROFLOW_ASTROMETRY_INDEX_DIR", str(empty))
    data = yaml.safe_load((RULESETS_DIR / "generic-ccd.yaml").read_text())
    for recipe in data["recipes"]:
        if recipe["name"] == "reduce":
            recipe["solve"] = {"enabled": True}
    rules = tmp_path / "solving.yaml"
    rules.write_text(yaml.safe_dump(data))
    ws = tmp_path / "ws"
    _night(ws, catalogue, np.random.default_rng(3))
    prepare_workspace(str(ws), rules=str(rules))
    summary = calibration_cascade(str(ws))
    assert summary.failed == ()
    reduced = [o for o in summary.outcomes if o.recipe == "reduce"]
    assert len(reduced) == 3
    for outcome in reduced:
        assert outcome.kind == "made"
        ((kind, message),) = outcome.notes
        assert kind == "AstrometryError"
        assert "ASTROFLOW_ASTROMETRY_INDEX_DIR" in message
        assert str(empty) in message


def test_a_tan_sip_solution_when_the_rules_ask(
    index_dir: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sip_order: 2``: the product's header is a TAN-SIP WCS of that order that astropy
    reads back, and the stars still land within 1 arcsec (the backend and the header, without
    a night around them)."""
    from astroflow.models.cascade import RecipeInput, WorkspaceRef
    from astroflow.models.rules import Solve
    from astroflow.processing.image_quality import measure_frame
    from astroflow.tasks.cascade_work import _solve

    folder, catalogue = index_dir
    monkeypatch.setenv("ASTROFLOW_ASTROMETRY_INDEX_DIR", str(folder))
    rng = np.random.default_rng(9)
    image = 300.0 + render_stars(catalogue, TRUE, SHAPE)
    image = (rng.poisson(image * 1.5) / 1.5 + rng.normal(0, 10, SHAPE)).astype(np.float32)
    _, sources = measure_frame(image, np.zeros(SHAPE, bool), fit=False)
    inp = RecipeInput(
        workspace=WorkspaceRef(root=folder, database_url="sqlite://"),
        session="base",
        recipe="reduce",
        set_name="sip",
        product="sip",
        product_path=str(folder / "sip.fits"),
        raw=(str(folder / "sip_raw.fits"),),
        solve=Solve(enabled=True, sip_order=2),
    )
    header, qc, history, notes = _solve(inp, sources, SHAPE, fits.Header(OFF))
    assert notes == []
    assert header["CTYPE1"] == "RA---TAN-SIP"
    assert header["A_ORDER"] == 2
    assert "TAN-SIP order 2" in history[0]
    assert qc["astrometric_rms"] < 0.5
    wcs = WCS(header)
    assert wcs.sip is not None
    truth = WCS(TRUE)
    x_true, y_true = truth.all_world2pix(catalogue["RA"], catalogue["DEC"], 0)
    inside = (x_true > 5) & (x_true < SHAPE[1] - 5) & (y_true > 5) & (y_true < SHAPE[0] - 5)
    x, y = wcs.all_world2pix(catalogue["RA"][inside], catalogue["DEC"][inside], 0)
    assert np.hypot(x - x_true[inside], y - y_true[inside]).max() * SCALE * 3600 < 1.0
