"""ESO DET OUTi geometry: where each output's strips and valid pixels lie in the raw array
and in the product, read from the header as ESO writes it."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from astroflow.models.errors import CalibrationError
from astroflow.models.rules import Detector
from astroflow.processing.outputs import eso_outputs, outputs_shape, raw_outputs
from astroflow.processing.preprocess import geometry, preprocess_frame, raw_kept


def _header(outputs: dict[str, dict[str, float]], count: bool = True) -> dict:
    header: dict = {"ESO DET OUTPUTS": len(outputs)} if count else {}
    for name, cards in outputs.items():
        header.update({f"ESO DET {name} {k}": v for k, v in cards.items()})
    return header


def _port(x: int, y: int, **extra: float) -> dict[str, float]:
    cards = {"X": x, "Y": y, "NX": 10, "NY": 8, "PRSCX": 2, "OVSCX": 3, "CONAD": 1.0}
    cards.update(extra)
    return cards


def test_four_outputs_in_two_by_two_ports() -> None:
    """FORS1's four-port read: outputs at the chip's corners, each port [prescan][valid]
    [overscan] read from its own corner (mirrored at the far ends)."""
    header = _header(
        {
            "OUT1": _port(1, 1),
            "OUT2": _port(20, 1),
            "OUT3": _port(1, 16),
            "OUT4": _port(20, 16),
        }
    )
    outs = {o.name: o for o in eso_outputs(header, (16, 30), "fors1.fits")}
    # columns: OUT1 port 0..14 (prescan 0-1, valid 2-11, overscan 12-14), OUT2 port 15..29
    # read the other way (overscan 15-17, valid 18-27, prescan 28-29)
    assert outs["OUT1"].valid == (slice(0, 8), slice(2, 12))
    assert outs["OUT1"].overscan == ((slice(0, 8), slice(12, 15)), 1)
    assert outs["OUT2"].valid == (slice(0, 8), slice(18, 28))
    assert outs["OUT2"].overscan == ((slice(0, 8), slice(15, 18)), 1)
    assert outs["OUT3"].valid == (slice(8, 16), slice(2, 12))
    assert outs["OUT4"].place == (8, 10)
    assert outputs_shape(tuple(outs.values())) == (16, 20)


def test_a_single_output_at_the_far_end_reads_backwards_binned_too() -> None:
    """EFOSC2: one output at X = 2048 (binned 2x2: 1024 valid columns), prescan in X on the
    far side, overscan in Y only: the strip of rows levels each column."""
    cards = {"X": 2048, "Y": 1, "NX": 1024, "NY": 1024, "PRSCX": 6, "OVSCX": 0, "OVSCY": 6}
    (out,) = eso_outputs(_header({"OUT1": cards}, count=False), (1030, 1030), "efosc.fits")
    assert out.valid == (slice(0, 1024), slice(0, 1024))
    # the prescan columns lie beyond the valid ones (the output reads from the right)
    assert out.overscan == ((slice(0, 1024), slice(1024, 1030)), 1)


def test_one_output_per_extension_unnumbered() -> None:
    """OmegaCAM and VIRCAM extensions: ``ESO DET OUT NX`` without a number."""
    header = {"ESO DET OUT NX": 10, "ESO DET OUT NY": 8, "ESO DET OUT PRSCY": 2, "ESO DET OUT X": 1}
    (out,) = eso_outputs(header, (10, 10), "ccd.fits")
    assert out.name == "OUT"
    assert out.overscan == ((slice(0, 2), slice(0, 10)), 0)
    assert out.valid == (slice(2, 10), slice(0, 10))


@pytest.mark.parametrize(
    ("header", "shape", "message"),
    [
        (_header({"OUT1": _port(1, 1)}), (8, 16), r"raw\.fits: its 16x8 pixels are not the 15x8"),
        (
            _header({"OUT1": {"X": 1, "Y": 1, "NY": 8}}),
            (8, 15),
            r"raw\.fits: no ESO DET OUT1 NX in its header",
        ),
        (
            _header({"OUT1": _port(1, 1, NX="ten")}),
            (8, 15),
            r"raw\.fits: ESO DET OUT1 NX = 'ten' is not a number",
        ),
        (
            _header({"OUT1": _port(1, 1), "OUT2": _port(5, 1), "OUT3": _port(9, 1)}),
            (8, 45),
            r"raw\.fits: 3 output locations along one axis",
        ),
        (
            _header({"OUT1": _port(1, 1), "OUT2": _port(1, 1, NX=12)}),
            (8, 32),
            r"raw\.fits: the outputs on one side differ along X",
        ),
        (
            _header({"OUT1": _port(1, 1, NX=0)}),
            (8, 5),
            r"raw\.fits: ESO DET OUT1 NX = 0 is not a count",
        ),
    ],
    ids=["shape-differs", "missing-nx", "not-a-number", "three-along-x", "ports-differ", "nx-0"],
)
def test_bad_geometry_is_named(header: dict, shape: tuple[int, int], message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        eso_outputs(header, shape, "raw.fits")


def test_a_frame_without_the_keywords_is_taken_as_it_is() -> None:
    geo = geometry(Detector(outputs="eso"), {"EXPTIME": 1.0}, "old.fits", (5, 5))
    assert geo.outputs == ()
    assert geo.gain is None


def test_each_output_levelled_and_gained_on_its_own() -> None:
    """Two outputs side by side with their own bias level and CONAD: the product is each
    output's (valid - median of its overscan row) x CONAD, joined; saturation is judged on
    the joined raw pixels; an output without CONAD when the other has one is refused."""
    rng = np.random.default_rng(4)
    header = _header({"OUT1": _port(1, 1, CONAD=1.5, RON=4.0), "OUT2": _port(20, 1, CONAD=2.0)})
    raw = np.empty((8, 30), np.uint16)
    raw[:, :15] = 300 + rng.integers(0, 3, (8, 15))
    raw[:, 15:] = 500 + rng.integers(0, 3, (8, 15))
    geo = geometry(Detector(outputs="eso"), header, "two.fits", raw.shape)
    done = preprocess_frame(raw, geo, "median", None)
    left = (raw[:, 2:12] - np.median(raw[:, 12:15], axis=1, keepdims=True)) * 1.5
    right = (raw[:, 18:28] - np.median(raw[:, 15:18], axis=1, keepdims=True)) * 2.0
    np.testing.assert_array_equal(done.data, np.hstack([left, right]))
    assert done.origin == (2, 0)
    assert [noise for _, noise in done.regions] == [4.0, None]
    np.testing.assert_array_equal(raw_kept(raw, geo), np.hstack([raw[:, 2:12], raw[:, 18:28]]))
    np.testing.assert_array_equal(raw_outputs(raw, geo.outputs), raw_kept(raw, geo))
    assert geo.gain == 1.5  # the lower gain: saturation in the fewest electrons
    del header["ESO DET OUT2 CONAD"]
    with pytest.raises(CalibrationError, match="ESO DET OUT2 CONAD is missing"):
        geometry(Detector(outputs="eso"), header, "two.fits", raw.shape)
    with pytest.raises(CalibrationError, match=r"two\.fits: no ESO DET OUT2 RON"):
        geometry(Detector(outputs="eso", required=("read_noise",)), header, "two.fits", raw.shape)
    fixed = geometry(Detector(outputs="eso", gain=3.0), header, "two.fits", raw.shape)
    assert {o.gain for o in fixed.outputs} == {3.0}


def test_outputs_leave_out_sections_of_their_own() -> None:
    with pytest.raises(ValidationError, match="leave overscan and trim out"):
        Detector(outputs="eso", trim="TRIMSEC")
