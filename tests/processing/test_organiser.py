"""Classification, grouping, prediction and calibration matching (pure functions)."""

from __future__ import annotations

import pytest

from astroflow.models.errors import ProcessingError
from astroflow.models.organiser import FrameInfo
from astroflow.models.rules import load_rules
from astroflow.processing.organiser import (
    frame_info,
    match_calibrations,
    mjd_from_isot,
    night_of,
    plan_sets,
)

RULES = load_rules()


def _h(**kw: object) -> dict:
    base = {
        "IMAGETYP": "BIAS",
        "EXPTIME": 0.0,
        "MJD-OBS": 61050.1,
        "INSTRUME": "CAM",
        "XBINNING": 1,
        "YBINNING": 1,
        "GAIN": 1.5,
        "READOUTM": "Fast",
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("imagetyp", "kind"),
    [
        ("BIAS", "bias"),
        ("zero", "bias"),
        ("Bias Frame", "bias"),
        ("Dark Frame", "dark"),
        ("Flat Field", "flat"),
        ("SKYFLAT", "flat"),
        ("domeflat", "flat"),
        ("Light Frame", "science"),
        ("OBJECT", "science"),
        (" light ", "science"),
    ],
    ids=lambda v: str(v).strip().replace(" ", "-"),
)
def test_imagetyp_variants(imagetyp: str, kind: str) -> None:
    assert frame_info("f.fits", _h(IMAGETYP=imagetyp), RULES).kind == kind


def test_night_is_mjd_minus_15_hours() -> None:
    assert night_of(mjd_from_isot("2026-01-10T14:59:00")) == "2026-01-09"
    assert night_of(mjd_from_isot("2026-01-10T15:01:00")) == "2026-01-10"
    assert mjd_from_isot("1858-11-17T00:00:00") == 0.0


def test_mjd_from_date_obs_when_absent() -> None:
    info = frame_info("f.fits", _h(**{"MJD-OBS": None, "DATE-OBS": "2026-01-10T02:24:00"}), RULES)
    assert info.mjd_obs == pytest.approx(61050.1)
    assert info.night == "2026-01-09"


def test_exptime_rounded_to_centiseconds() -> None:
    a = frame_info("a.fits", _h(IMAGETYP="DARK", EXPTIME=60.0001), RULES)
    b = frame_info("b.fits", _h(IMAGETYP="DARK", EXPTIME=59.9999), RULES)
    assert a.exptime == b.exptime == 60.0


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (_h(IMAGETYP=None), "missing required keyword IMAGETYP"),
        (_h(EXPTIME=None), "missing required keyword EXPTIME"),
        (_h(**{"MJD-OBS": None}), "MJD-OBS and DATE-OBS"),
        (_h(IMAGETYP="FOCUS"), "matches no rule"),
        (_h(EXPTIME="long"), "not a number"),
        (_h(**{"MJD-OBS": None, "DATE-OBS": "yesterday"}), "not an ISO 8601"),
    ],
    ids=["no-type", "no-exptime", "no-time", "unknown-type", "bad-exptime", "bad-date"],
)
def test_bad_headers(header: dict, match: str) -> None:
    with pytest.raises(ProcessingError, match=match):
        frame_info("bad.fits", header, RULES)


def _frame(name: str, kind: str, mjd: float, exptime: float = 0.0, **kw: str) -> FrameInfo:
    return FrameInfo(
        file=name,
        kind=kind,
        exptime=exptime,
        mjd_obs=mjd,
        night=night_of(mjd),
        instrument="CAM",
        **kw,
    )


def test_ties_are_broken_by_name_and_missing_calibrations_reported() -> None:
    frames = [
        *[_frame(f"b1_{i}.fits", "bias", 61050.0 + i * 1e-4) for i in range(3)],
        *[_frame(f"b2_{i}.fits", "bias", 61052.0 + i * 1e-4) for i in range(3)],
        # science exactly between the two bias nights: equal |delta MJD|
        _frame("sci.fits", "science", 61051.0001, 10.0, filter="R"),
    ]
    sets, products = plan_sets(frames, RULES)
    sofs = {s.set_name: s for s in match_calibrations(sets, products, RULES)}
    sci = sofs["sci_RED"]
    biases = sorted(p.name for p in products if p.recipe == "mbias")
    assert sci.calibrations[0] == biases[0]  # tie -> first by name
    assert not sci.complete
    assert "no MASTER_DARK" in sci.reason
    assert "no MASTER_FLAT" in sci.reason
    # Reversing the input order changes nothing.
    sets2, products2 = plan_sets(list(reversed(frames)), RULES)
    assert match_calibrations(sets2, products2, RULES) == list(sofs.values())


def test_failed_product_is_replaced_by_next_closest() -> None:
    frames = [
        *[_frame(f"b1_{i}.fits", "bias", 61050.0 + i * 1e-4) for i in range(3)],
        *[_frame(f"b2_{i}.fits", "bias", 61053.0 + i * 1e-4) for i in range(3)],
        *[_frame(f"d_{i}.fits", "dark", 61050.1 + i * 1e-4, 30.0) for i in range(3)],
    ]
    sets, products = plan_sets(frames, RULES)
    near, far = sorted((p for p in products if p.recipe == "mbias"), key=lambda p: p.mjd)
    dark = next(s for s in sets if s.recipe == "mdark").name
    first = {s.set_name: s for s in match_calibrations(sets, products, RULES)}
    assert first[dark].calibrations == (near.name,)
    second = {s.set_name: s for s in match_calibrations(sets, products, RULES, {near.name: "fail"})}
    assert second[dark].calibrations == (far.name,)
    third = {
        s.set_name: s
        for s in match_calibrations(sets, products, RULES, {near.name: "fail", far.name: "fail"})
    }
    assert not third[dark].complete
    assert "failed" in third[dark].reason


def test_incomplete_reason_names_only_the_candidates_that_matched() -> None:
    frames = [
        *[_frame(f"b_{i}.fits", "bias", 61050.0 + i * 1e-4) for i in range(3)],
        *[_frame(f"d_{i}.fits", "dark", 61050.1 + i * 1e-4, 10.0) for i in range(3)],
        *[_frame(f"fr_{i}.fits", "flat", 61050.2 + i * 1e-4, 5.0, filter="R") for i in range(3)],
        *[_frame(f"fv_{i}.fits", "flat", 61050.3 + i * 1e-4, 5.0, filter="V") for i in range(3)],
        _frame("sciR.fits", "science", 61050.4, 10.0, filter="R"),
        _frame("sciV.fits", "science", 61050.5, 10.0, filter="V"),
    ]
    sets, products = plan_sets(frames, RULES)
    flat_r = next(p.name for p in products if p.recipe == "mflat" and "_R_" in p.name)
    flat_v = next(p.name for p in products if p.recipe == "mflat" and "_V_" in p.name)
    sofs = {s.set_name: s for s in match_calibrations(sets, products, RULES, {flat_r: "fail"})}
    assert sofs["sciV_RED"].complete  # the V flat is fine
    assert not sofs["sciR_RED"].complete
    assert f"(failed: {flat_r})" in sofs["sciR_RED"].reason
    both = {flat_r: "fail", flat_v: "fail"}
    sofs = {s.set_name: s for s in match_calibrations(sets, products, RULES, both)}
    assert flat_v not in sofs["sciR_RED"].reason  # another filter's flat is no candidate
    assert flat_r not in sofs["sciV_RED"].reason
    assert f"(failed: {flat_v})" in sofs["sciV_RED"].reason


def test_darks_rank_by_exposure_time_first() -> None:
    frames = [
        *[_frame(f"b_{i}.fits", "bias", 61050.0 + i * 1e-4) for i in range(3)],
        *[_frame(f"d30_{i}.fits", "dark", 61050.5 + i * 1e-4, 30.0) for i in range(3)],
        *[_frame(f"d300_{i}.fits", "dark", 61050.01 + i * 1e-4, 300.0) for i in range(3)],
        *[_frame(f"f_{i}.fits", "flat", 61050.02 + i * 1e-4, 5.0, filter="R") for i in range(3)],
        _frame("sci.fits", "science", 61050.02, 40.0, filter="R"),
    ]
    sets, products = plan_sets(frames, RULES)
    sofs = {s.set_name: s for s in match_calibrations(sets, products, RULES)}
    dark30 = next(p.name for p in products if p.recipe == "mdark" and p.exptime == 30.0)
    assert dark30 in sofs["sci_RED"].calibrations  # closer in exptime, further in time
    assert sofs["sci_RED"].complete


def test_product_names_fit_fits_headers() -> None:
    frames = [_frame("x" * 90 + ".fits", "science", 61050.0, 1.0)]
    _, products = plan_sets(frames, RULES)
    assert len(products[0].name) <= 60
    assert products[0].filepath.startswith("reduced/")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_indexed_matching_equals_brute_force(seed: int) -> None:
    import random

    rnd = random.Random(seed)
    frames = []
    for night in range(25):
        base = 61000.0 + night + rnd.random() * 0.1
        frames += [_frame(f"b{night}_{i}.fits", "bias", base + i * 1e-4) for i in range(3)]
        exp = rnd.choice([30.0, 60.0, 120.0])
        frames += [
            _frame(f"d{night}_{i}.fits", "dark", base + 0.01 + i * 1e-4, exp) for i in range(3)
        ]
        frames += [
            _frame(f"f{night}_{i}.fits", "flat", base + 0.02 + i * 1e-4, 2.0, filter="R")
            for i in range(3)
        ]
    frames += [
        _frame(
            f"s{i}.fits",
            "science",
            61000.0 + rnd.random() * 26,
            rnd.choice([45.0, 90.0, 100.0]),
            filter="R",
        )
        for i in range(40)
    ]
    sets, products = plan_sets(frames, RULES)
    failed = {p.name: "fail" for p in products if rnd.random() < 0.2 and p.recipe != "reduce"}
    got = match_calibrations(sets, products, RULES, failed)
    # brute force: the same choice with min() over every candidate
    from astroflow.processing import organiser as org

    original = org._nearest
    try:
        org._nearest = lambda need, target, cands, cache, index: min(  # type: ignore[assignment]
            cands, key=lambda p: org._rank(need, target, p)
        )
        want = match_calibrations(sets, products, RULES, failed)
    finally:
        org._nearest = original
    assert got == want


# -- sites, dates, tokens, validity --------------------------------------------------------


@pytest.mark.parametrize(
    ("longitude", "hours", "nights"),
    [
        (-156.3, range(5, 17), {"2026-12-01"}),  # Hawaii: 05:00-16:00 UT is one night
        (149.07, range(7, 19), {"2026-12-02"}),  # Siding Spring: 07:00-18:00 UT, local evening
        (None, range(5, 17), {"2026-12-01", "2026-12-02"}),  # the default rule splits it
    ],
    ids=["hawaii", "australia", "no-site"],
)
def test_a_night_runs_from_local_noon_to_local_noon(
    longitude: float | None, hours: range, nights: set[str]
) -> None:
    stamps = [mjd_from_isot("2026-12-02", f"{h:02d}:30:00") for h in hours]
    assert {night_of(m, longitude) for m in stamps} == nights


@pytest.mark.parametrize(
    ("value", "degrees"),
    [
        (-70.4045, -70.4045),
        ("-96:27:11.8008", -(96 + 27 / 60 + 11.8008 / 3600)),
        ("+149:03:42.00", 149 + 3 / 60 + 42 / 3600),
        (289.6, 289.6 - 360),
        ("east", None),
    ],
    ids=["number", "sexagesimal-west", "sexagesimal-east", "0-360", "text"],
)
def test_site_longitudes_in_header_forms(value: object, degrees: float | None) -> None:
    from astroflow.processing.organiser import parse_longitude

    found = parse_longitude(value)
    assert found == (pytest.approx(degrees) if degrees is not None else None)


def test_the_site_longitude_comes_from_rules_then_header_then_setting() -> None:
    from astroflow.models.rules import Site
    from astroflow.processing.organiser import site_longitude

    header = {"SITELONG": "-96:27:11.8"}
    with_site = RULES.model_copy(update={"site": Site(longitude=20.81)})
    assert site_longitude(header, with_site, 10.0) == pytest.approx(20.81)
    assert site_longitude(header, RULES, 10.0) == pytest.approx(-96.4533, abs=1e-4)
    assert site_longitude({}, RULES, 10.0) == 10.0
    geocentric = {"OBSGEO-X": 5327448.9957, "OBSGEO-Y": -1718665.7387}  # Kitt Peak
    assert site_longitude(geocentric, RULES) == pytest.approx(-17.88, abs=0.01)


def test_pre_2000_dates_and_a_date_with_its_time() -> None:
    assert mjd_from_isot("19/05/94") == 49491.0  # dd/mm/yy: 1994
    assert mjd_from_isot("2013-07-13", "00:57:33") == pytest.approx(56486.0399653)
    info = frame_info(
        "f.fits",
        _h(**{"MJD-OBS": 56486.0, "DATE-OBS": "2013-07-13", "UT": "00:57:33"}),
        RULES.model_copy(update={"keywords": {**RULES.keywords, "time_obs": "UT"}}),
    )
    assert info.mjd_obs == pytest.approx(56486.0399653)  # not the MJD rounded to the day


def test_classification_values_match_by_token() -> None:
    eso = load_rules("eso-imager")
    header = {
        "ESO DPR CATG": "SCIENCE",
        "ESO DPR TYPE": "OBJECT",
        "ESO DPR TECH": "IMAGE,JITTER",
        "EXPTIME": 10.0,
        "MJD-OBS": 61050.1,
        "INSTRUME": "HAWKI",
    }
    header = {k: v for k, v in header.items() if k in set(eso.keywords.values())}
    assert frame_info("j.fits", header, eso).kind == "science"


def test_calibrations_older_than_the_recipes_max_age_are_skipped_and_said() -> None:
    rules = RULES.model_copy(
        update={
            "recipes": tuple(
                r.model_copy(update={"max_age_days": 2.0}) if r.name == "mbias" else r
                for r in RULES.recipes
            )
        }
    )
    frames = [
        frame_info(f"b{i}.fits", _h(**{"MJD-OBS": 61040.1 + i * 1e-3}), rules) for i in range(3)
    ] + [
        frame_info(f"d{i}.fits", _h(IMAGETYP="DARK", EXPTIME=60.0, **{"MJD-OBS": 61050.1}), rules)
        for i in range(3)
    ]
    sets, products = plan_sets(frames, rules)
    sofs = {s.recipe: s for s in match_calibrations(sets, products, rules)}
    dark = sofs["mdark"]
    assert not dark.complete
    assert "older ones skipped" in dark.reason
    (skipped,) = dark.skipped
    assert "10.0 d apart, more than mbias's max_age_days 2" in skipped
    assert "# SKIPPED: " in dark.text()
