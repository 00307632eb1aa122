"""Frames of real instruments read through their primary and extension headers, with a rules
file for each; multi-extension frames calibrated extension by extension."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from astroflow.flows.cascade import calibration_cascade
from astroflow.flows.cli import app
from astroflow.flows.organiser import prepare_workspace
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.workspace import Workspace
from tests.real_frames import STIS, WFPC2, astropy_data, clipped_mean, wfpc2_night

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def _frames(ws: Path) -> dict:
    return {
        Path(p).name: info
        for p, (_, info) in catalog.load_frames(Workspace.open(ws).database()).items()
    }


@pytest.mark.parametrize(
    ("name", "rules", "kind", "exptime", "night"),
    [
        (WFPC2, "hst-wfpc2", "science", 0.23, "1994-05-19"),
        (STIS, "hst-stis", "science", 30.0, "1998-04-20"),
    ],
    ids=["wfpc2", "stis"],
)
def test_hst_frames_are_read_through_primary_and_extension(
    tmp_path: Path, name: str, rules: str, kind: str, exptime: float, night: str
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(astropy_data(name), ws / name)
    summary = prepare_workspace(str(ws), rules=rules)
    assert summary.rejected == ()
    (info,) = _frames(ws).values()
    assert info.kind == kind
    assert info.exptime == pytest.approx(exptime)  # STIS: from the SCI header only
    assert info.night == night


def test_a_frame_the_rules_are_not_for_goes_to_misc_with_the_reason(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(astropy_data(STIS), ws / STIS)
    summary = prepare_workspace(str(ws), rules="hst-wfpc2")
    ((file, reason),) = summary.rejected
    assert file == STIS
    assert "no rules claim it" in reason
    assert "INSTRUME='STIS'" in reason
    result = CliRunner().invoke(app, ["list", "misc", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    assert f'"file": "misc/{STIS}"' in result.output
    assert "no rules claim it" in result.output


def test_cubes_and_files_without_an_image_are_refused_naming_what_they_hold(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    header = fits.getheader(astropy_data(WFPC2))
    fits.PrimaryHDU(np.zeros((3, 8, 8), np.float32), header).writeto(ws / "cube.fits")
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(header=header), table]).writeto(ws / "table.fits")
    summary = prepare_workspace(str(ws), rules="hst-wfpc2")
    reasons = dict(summary.rejected)
    assert "3-D cube (8x8x3), not a 2-D image" in reasons["cube.fits"]
    assert "holds no 2-D image (bintable)" in reasons["table.fits"]


def test_eso_ntt_frame_of_1991_is_uncompressed_and_accounted_for(tmp_path: Path) -> None:
    """ESO's NTT frame (``DPR CATG = 'CALIB'`` and no ``DPR TYPE``): uncompressed from ``.Z``,
    then set aside with that reason, which ``astroflow list misc`` shows."""
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(astropy_data("lzw.fits.Z"), ws / "lzw.fits.Z")
    summary = prepare_workspace(str(ws), rules="eso-imager")
    assert not _frames(ws)
    assert dict(summary.rejected) == {"lzw.fits": "lzw.fits: missing required keyword ESO DPR TYPE"}
    assert not (ws / "lzw.fits.Z").exists()  # uncompressed (the compressed file is gone)
    result = CliRunner().invoke(app, ["list", "misc", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    assert '"reason": "lzw.fits: missing required keyword ESO DPR TYPE"' in result.output


def test_every_wfpc2_chip_is_calibrated(tmp_path: Path) -> None:
    ws = wfpc2_night(tmp_path / "ws", np.random.default_rng(3))
    prepare_workspace(str(ws), rules="hst-wfpc2")
    summary = calibration_cascade(str(ws))
    assert summary.failed == (), summary.reasons
    assert len(summary.made) == 4  # bias, dark, flat, the science frame
    reduced = next((ws / "sessions" / "base" / "reduced").rglob("test0_RED.fits"))
    raw = {p.name: p for p in (ws / "raw").rglob("*.fits")}
    gain = fits.getheader(raw[WFPC2])["ATODGAIN"]
    with fits.open(reduced) as hdul:
        names = [(h.name, h.ver) for h in hdul[1:]]
        assert names[:3] == [("SCI", 1), ("VARIANCE", 1), ("MASK", 1)]
        assert sorted(n for n in names if n[0] == "SCI") == [("SCI", v) for v in range(1, 5)]
        for chip in range(1, 5):

            def electrons(kind: str, chip: int = chip) -> list[np.ndarray]:
                return [
                    fits.getdata(raw[n], ("SCI", chip)).astype(np.float64) * gain
                    for n in sorted(raw)
                    if f"_{kind}_" in n
                ]

            bias = clipped_mean(electrons("bias"))
            t_dark = fits.getheader(raw["wfpc2_dark_0.fits"])["EXPTIME"]
            dark = clipped_mean([(d - bias) / t_dark for d in electrons("dark")])
            flats = []
            for f in electrons("flat"):
                corrected = f.astype(np.float32) - bias - dark * 1.0
                flats.append((corrected / np.median(corrected)).astype(np.float32))
            flat = clipped_mean(flats)
            flat /= np.nanmedian(flat)
            science = fits.getdata(raw[WFPC2], ("SCI", chip)).astype(np.float64) * gain
            expected = (science - bias - dark * 0.23) / flat
            sci = hdul["SCI", chip]
            assert sci.header["BUNIT"] == "electron"
            np.testing.assert_allclose(sci.data, expected, rtol=1e-4, atol=1e-2)
            assert hdul["MASK", chip].header["AF_OF"] == f"SCI,{chip}"
        assert hdul[0].header["AF_RECIP"] == "reduce"
        assert hdul[0].data is None


def test_a_workspace_of_two_cameras_is_classified_and_calibrated_by_each_ones_rules(
    tmp_path: Path,
) -> None:
    from tests.real_frames import SAAO, saao_night

    ws = tmp_path / "ws"
    saao_night(ws, np.random.default_rng(8))
    wfpc2_night(ws, np.random.default_rng(3))
    shutil.copy(astropy_data(STIS), ws / STIS)
    summary = prepare_workspace(str(ws), rules="saao-ste3,hst-wfpc2")
    ((file, reason),) = summary.rejected
    assert file == STIS
    assert "no rules claim it (rules saao-ste3,hst-wfpc2; INSTRUME='STIS')" in reason
    frames = _frames(ws)
    assert frames[SAAO].rules == "saao-ste3"
    assert frames[WFPC2].rules == "hst-wfpc2"
    assert {f.rules for n, f in frames.items() if n.startswith("wfpc2_")} == {"hst-wfpc2"}
    cascade = calibration_cascade(str(ws))
    assert cascade.failed == (), cascade.reasons
    reduced = ws / "sessions" / "base" / "reduced"
    saao = next(reduced.rglob("a8280271_RED.fits"))
    assert fits.getheader(saao)["BUNIT"] == "electron"  # SAAO's chain: overscan, trim, gain
    assert fits.getdata(saao).shape == (520, 512)
    hst = next(reduced.rglob("test0_RED.fits"))
    with fits.open(hst) as hdul:
        assert [h.ver for h in hdul if h.name == "SCI"] == [1, 2, 3, 4]  # WFPC2's chips
    sofs = {p.stem: p.read_text() for p in (ws / "sessions" / "base" / "sof").glob("*.sof")}
    saao_sof = sofs["a8280271_RED"]
    assert "saao_zero" not in saao_sof  # (the bias frames are the master's inputs)
    assert "MBIAS" in saao_sof
    assert "19940" not in saao_sof
