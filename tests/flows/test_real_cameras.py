"""Real raw frames through the cascade, checked against ccdproc in the same test: SAAO's
STE3 CCD (ccdproc's ``a8280271.fits``: overscan columns, TRIMSEC, GAIN, RDNOISE)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import astropy.units as u
import ccdproc
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.wcs import WCS

from astroflow.flows.cascade import calibration_cascade
from astroflow.flows.organiser import prepare_workspace
from tests.real_frames import SAAO, ccdproc_data, clipped_mean, saao_night

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def _ccdproc_pre(path: Path) -> CCDData:
    """ccdproc's chain on one raw frame: overscan (median per row), trim, gain."""
    ccd = CCDData.read(path, unit="adu")
    h = ccd.header
    ccd = ccdproc.subtract_overscan(ccd, fits_section=h["BIASSEC"], median=True, overscan_axis=1)
    ccd = ccdproc.trim_image(ccd, fits_section=h["TRIMSEC"])
    return ccdproc.gain_correct(ccd, h["GAIN"] * u.electron / u.adu)


def _product(ws: Path, pattern: str) -> Path:
    (found,) = sorted((ws / "sessions" / "base" / "reduced").rglob(pattern))
    return found


def test_saao_night_calibrates_as_ccdproc(tmp_path: Path) -> None:
    ws = saao_night(tmp_path / "ws", np.random.default_rng(8))
    prepared = prepare_workspace(str(ws), rules="saao-ste3")
    assert prepared.rejected == ()
    summary = calibration_cascade(str(ws))
    assert summary.failed == (), summary.reasons
    raw = sorted((ws / "raw").rglob("*.fits"))
    assert {p.parent.name for p in raw} == {"2013-07-12"}  # one night at Sutherland

    # masters: ccdproc's pre-processing, then the same clipped mean
    pre = {p.name: _ccdproc_pre(p) for p in raw}
    bias_ref = clipped_mean([pre[n].data for n in pre if "_zero_" in n])
    bias = fits.getdata(_product(ws, "*MBIAS*.fits"))
    np.testing.assert_allclose(bias, bias_ref, rtol=1e-5, atol=1e-4)
    exptime = fits.getheader(raw[0])["EXPTIME"]
    darks = [(pre[n].data - bias_ref) / exptime for n in pre if "_dark_" in n]
    dark = fits.getdata(_product(ws, "*MDARK*.fits"))
    np.testing.assert_allclose(dark, clipped_mean(darks), rtol=1e-5, atol=1e-5)
    flats = []  # (float32 frames, as astroflow's products and pixel cache hold them)
    for n in pre:
        if "_flat_" in n:
            corrected = pre[n].data.astype(np.float32) - bias_ref - dark * 10.0
            flats.append((corrected / np.median(corrected)).astype(np.float32))
    flat_ref = clipped_mean(flats)
    flat_ref /= np.nanmedian(flat_ref)
    flat = fits.getdata(_product(ws, "*MFLAT*.fits"))
    np.testing.assert_allclose(flat, flat_ref, rtol=1e-5)

    # the real science frame: ccdproc's whole chain with those masters
    unit = u.electron
    science = ccdproc.subtract_bias(pre[SAAO], CCDData(bias_ref, unit=unit))
    science = ccdproc.subtract_dark(
        science,
        CCDData(dark * exptime, unit=unit),
        dark_exposure=exptime * u.s,
        data_exposure=exptime * u.s,
    )
    science = ccdproc.flat_correct(
        science, CCDData(flat, unit=u.dimensionless_unscaled), norm_value=1
    )
    with fits.open(_product(ws, "a8280271_RED.fits")) as hdul:
        ours = hdul[0].data
        header = hdul[0].header
        assert [h.name for h in hdul] == ["PRIMARY", "VARIANCE", "MASK"]
        variance = hdul["VARIANCE"].data
    assert ours.shape == (520, 512)  # 512 columns by 520 rows
    assert header["BUNIT"] == "electron"
    np.testing.assert_allclose(ours, science.data, rtol=1e-5, atol=1e-3)
    signal = pre[SAAO].data - bias_ref - dark * exptime
    np.testing.assert_allclose(
        variance, (np.clip(signal, 0, None) + 5.0**2) / flat**2, rtol=1e-5
    )  # electrons squared: Poisson noise and RDNOISE
    assert header["LTV1"] == -16
    assert header["LTV2"] == 0
    assert "BIASSEC" not in header
    assert "TRIMSEC" not in header
    history = " ".join(str(h) for h in header["HISTORY"])
    assert "overscan: median per row" in history
    assert "gain 1.9 from GAIN" in history


def test_the_real_frame_is_cut_where_ccdproc_cuts_it(tmp_path: Path) -> None:
    """Overscan, trim and gain alone, on the raw pixels: ccdproc's numbers to 1e-5."""
    from astroflow.models.rules import load_rules
    from astroflow.processing.preprocess import geometry, preprocess_frame

    path = ccdproc_data(SAAO)
    rules = load_rules("saao-ste3")
    header = fits.getheader(path)
    geo = geometry(rules.detector, header, SAAO, (520, 536))
    ours = preprocess_frame(fits.getdata(path), geo, "median", None)
    ref = _ccdproc_pre(path)
    assert ours.data.shape == ref.data.shape == (520, 512)
    np.testing.assert_allclose(ours.data, ref.data, rtol=1e-5)
    assert ours.origin == (16, 0)
    # a WCS is shifted with the cut, as ccdproc's trim_image shifts it
    from astroflow.processing.wcs import trimmed_header

    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRPIX1"], header["CRPIX2"], header["CRVAL1"], header["CRVAL2"] = (
        268.0,
        260.0,
        331.0,
        -0.9,
    )
    header["CD1_1"], header["CD2_2"], header["CD1_2"], header["CD2_1"] = -1e-4, 1e-4, 0.0, 0.0
    cut = trimmed_header(header, ours.origin)
    before = WCS(header).pixel_to_world(100 + 16, 50)
    after = WCS(cut).pixel_to_world(100, 50)
    assert before.separation(after).arcsec < 1e-6


def test_a_required_section_missing_fails_naming_frame_and_keyword(tmp_path: Path) -> None:
    ws = saao_night(tmp_path / "ws", np.random.default_rng(8))
    with fits.open(ws / SAAO, mode="update") as hdul:
        del hdul[0].header["TRIMSEC"]
    prepare_workspace(str(ws), rules="saao-ste3")
    summary = calibration_cascade(str(ws))
    assert summary.failed == ("a8280271_RED",)
    assert "a8280271.fits: no TRIMSEC in its header" in summary.reasons["a8280271_RED"]
    assert summary.failure_kinds["a8280271_RED"] == "recipe"


def test_a_missing_gain_is_an_error_not_one(tmp_path: Path) -> None:
    ws = saao_night(tmp_path / "ws", np.random.default_rng(8))
    for path in ws.glob("*.fits"):
        with fits.open(path, mode="update") as hdul:
            del hdul[0].header["GAIN"]
    prepare_workspace(str(ws), rules="saao-ste3")
    summary = calibration_cascade(str(ws))
    bias = next(n for n in summary.failed if "MBIAS" in n)
    assert "no GAIN in its header" in summary.reasons[bias]
    assert not summary.made  # nothing made in ADU and called electrons


def _ccdproc_masters(
    raw: list[Path], pre: Callable[[Path], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The masters of a seeded night (frames named ``*_bias_*``, ``*_dark_*`` of 60 s,
    ``*_flat_*`` of 5 s) from frames pre-processed by ccdproc's chain ``pre``: astroflow's
    combine (:func:`clipped_mean`), dark in e-/s, flats median-normalised."""
    bias = clipped_mean([pre(p) for p in raw if "_bias_" in p.name])
    dark = clipped_mean([(pre(p) - bias) / 60.0 for p in raw if "_dark_" in p.name])
    flats = []
    for p in raw:
        if "_flat_" in p.name:
            corrected = pre(p).astype(np.float32) - bias - dark * 5.0
            flats.append((corrected / np.median(corrected)).astype(np.float32))
    flat = clipped_mean(flats)
    flat /= np.nanmedian(flat)
    return bias, dark, flat


def _ccdproc_science(
    electrons: np.ndarray, bias: np.ndarray, dark: np.ndarray, flat: np.ndarray
) -> np.ndarray:
    """ccdproc's subtract_bias, subtract_dark (60 s) and flat_correct of a 60 s frame."""
    science = ccdproc.subtract_bias(
        CCDData(electrons, unit=u.electron), CCDData(bias, unit=u.electron)
    )
    science = ccdproc.subtract_dark(
        science,
        CCDData(dark * 60.0, unit=u.electron),
        dark_exposure=60 * u.s,
        data_exposure=60 * u.s,
    )
    return ccdproc.flat_correct(science, CCDData(flat, unit=""), norm_value=1).data


def test_a_two_amplifier_night_calibrates_as_ccdproc(tmp_path: Path) -> None:
    """Multi-extension frames, one amplifier each with its own overscan and gain: every
    master and reduced frame equals ccdproc's chain on the same extension to 1e-5."""
    from tests.real_frames import AMPLIFIERS, two_amp_night

    ws = two_amp_night(tmp_path / "ws", np.random.default_rng(21))
    prepare_workspace(str(ws), rules="iraf-ccd")
    summary = calibration_cascade(str(ws))
    assert summary.failed == (), summary.reasons
    assert len(summary.made) == 5  # bias, dark, flat, two science frames
    raw = sorted((ws / "raw").rglob("*.fits"))
    for amp in AMPLIFIERS:
        name, noise = amp[0], amp[4]

        def pre(path: Path, amp: tuple = amp) -> np.ndarray:
            name, biassec, trimsec, gain, _ = amp
            ccd = CCDData(fits.getdata(path, (name, 1)), unit="adu")
            ccd = ccdproc.subtract_overscan(ccd, fits_section=biassec, median=True, overscan_axis=1)
            ccd = ccdproc.trim_image(ccd, fits_section=trimsec)
            return ccdproc.gain_correct(ccd, gain * u.electron / u.adu).data

        bias, dark, flat = _ccdproc_masters(raw, pre)
        for recipe, ref in (("MBIAS", bias), ("MDARK", dark), ("MFLAT", flat)):
            ours = fits.getdata(_product(ws, f"*{recipe}*.fits"), (name, 1))
            np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4, err_msg=recipe)
        for p in raw:
            if "_object_" not in p.name:
                continue
            science = _ccdproc_science(pre(p), bias, dark, flat)
            with fits.open(_product(ws, p.name.replace(".fits", "_RED.fits"))) as hdul:
                ours = hdul[name, 1]
                assert ours.header["BUNIT"] == "electron"
                assert ours.data.shape == (64, 48)
                np.testing.assert_allclose(ours.data, science, rtol=1e-5, atol=1e-3)
                number = [h.name for h in hdul if h.name.startswith("AMP")].index(name) + 1
                variance = hdul["VARIANCE", number].data
                signal = pre(p) - bias - dark * 60.0
                np.testing.assert_allclose(
                    variance, (np.clip(signal, 0, None) + noise**2) / flat**2, rtol=1e-5
                )


def test_an_eso_frame_of_two_outputs_calibrates_as_ccdproc_output_by_output(
    tmp_path: Path,
) -> None:
    """One array read by two outputs (ESO DET OUTi: prescan, valid pixels and overscan of
    each, its own CONAD and RON): every master and reduced frame equals ccdproc's chain run
    on each output's sections (written out by hand) and joined, to 1e-5; the product is the
    chip without its strips, in electrons, its WCS shifted by the first output's prescan."""
    from tests.real_frames import ESO_OUTPUTS, eso_outputs_night

    ws = eso_outputs_night(tmp_path / "ws", np.random.default_rng(24))
    prepared = prepare_workspace(str(ws), rules="eso-imager")
    assert prepared.rejected == ()
    summary = calibration_cascade(str(ws))
    assert summary.failed == (), summary.reasons
    assert len(summary.made) == 5  # bias, dark, flat, two science frames
    raw = sorted((ws / "raw").rglob("*.fits"))

    def pre(path: Path) -> np.ndarray:
        parts = []
        for _, _, conad, _, overscan, valid in ESO_OUTPUTS:
            ccd = CCDData(fits.getdata(path), unit="adu")
            ccd = ccdproc.subtract_overscan(
                ccd, fits_section=overscan, median=True, overscan_axis=1
            )
            ccd = ccdproc.trim_image(ccd, fits_section=valid)
            parts.append(ccdproc.gain_correct(ccd, conad * u.electron / u.adu).data)
        return np.hstack(parts)

    bias, dark, flat = _ccdproc_masters(raw, pre)
    for recipe, ref in (("MBIAS", bias), ("MDARK", dark), ("MFLAT", flat)):
        ours = fits.getdata(_product(ws, f"*{recipe}*.fits"))
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4, err_msg=recipe)
    noise = np.repeat([ron for _, _, _, ron, _, _ in ESO_OUTPUTS], 48)[None, :]
    for p in raw:
        if "_object_" not in p.name:
            continue
        science = _ccdproc_science(pre(p), bias, dark, flat)
        with fits.open(_product(ws, p.name.replace(".fits", "_RED.fits"))) as hdul:
            header = hdul[0].header
            assert header["BUNIT"] == "electron"
            assert hdul[0].data.shape == (64, 96)
            np.testing.assert_allclose(hdul[0].data, science, rtol=1e-5, atol=1e-3)
            signal = pre(p) - bias - dark * 60.0
            np.testing.assert_allclose(
                hdul["VARIANCE"].data, (np.clip(signal, 0, None) + noise**2) / flat**2, rtol=1e-5
            )
            raw_wcs = WCS(fits.getheader(p))
            # a valid pixel keeps its sky position: raw (x, y) = product (x + 4, y) on OUT1
            assert header["LTV1"] == -4.0
            sky = raw_wcs.pixel_to_world(4 + 10.0, 20.0)
            assert WCS(header).world_to_pixel(sky) == pytest.approx((10.0, 20.0), abs=1e-9)
            history = "\n".join(str(c) for c in header["HISTORY"])
            assert "OUT2 (x 65..112, y 1..64 to x 49, y 1)" in history
            assert "gain 2.2 from ESO DET OUT2 CONAD" in history
