"""The readout outputs of one image that several amplifiers read, as ESO describes them
(``ESO DET OUTi`` keywords), and the pre-processing that joins them into one image.

An ESO detector writes one array per chip holding every output's pixels with their pre- and
overscan strips: outputs at the low end of an axis (``X`` or ``Y`` location 1) put their
prescan first (``[prescan][valid][overscan]``), outputs at the high end are read the other
way (``[overscan][valid][prescan]``), and two outputs along an axis sit side by side, the
low one first. Each output's strips level its own pixels, its ``CONAD`` (e-/ADU) turns them
into electrons, and the valid pixels of all outputs make the product, the chip as it is
without the strips.

Pure numpy; sections as astropy slices (0-based ``image[rows, columns]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from astroflow.models.errors import CalibrationError

__all__ = ["Output", "eso_outputs", "outputs_shape", "raw_outputs"]

_STRIPS = ("PRSCX", "OVSCX", "PRSCY", "OVSCY")


@dataclass(frozen=True)
class Output:
    """One readout output: where its pixels lie in the raw array and in the product.

    Attributes
    ----------
    name
        ``OUT1``, ``OUT2``... (as ESO numbers them).
    valid
        ``(rows, columns)`` of its valid pixels in the raw array.
    overscan
        ``((rows, columns), axis)`` of the strip that levels it (axis 1: columns beside the
        pixels, one level per row; 0: rows, one level per column), or None.
    place
        0-based ``(y0, x0)`` of its first valid pixel in the product.
    gain, read_noise
        e-/ADU and e-, or None where the header gives none.
    """

    name: str
    valid: tuple[slice, slice]
    overscan: tuple[tuple[slice, slice], int] | None
    place: tuple[int, int]
    gain: float | None
    read_noise: float | None

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of its valid pixels."""
        rows, columns = self.valid
        return rows.stop - rows.start, columns.stop - columns.start

    @property
    def region(self) -> tuple[slice, slice]:
        """``(rows, columns)`` of its pixels in the product."""
        (y0, x0), (ny, nx) = self.place, self.shape
        return slice(y0, y0 + ny), slice(x0, x0 + nx)


def _number(header: Mapping[str, Any], key: str, frame: str, default: float | None) -> Any:
    value = header.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None:
            raise CalibrationError(f"{frame}: no {key} in its header (ESO DET OUTi geometry)")
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CalibrationError(f"{frame}: {key} = {value!r} is not a number") from None


def _prefixes(header: Mapping[str, Any], frame: str) -> list[tuple[str, str]]:
    """``(name, keyword prefix)`` of each output the header describes (none: not ESO's)."""
    count = header.get("ESO DET OUTPUTS")
    if count is not None:
        n = int(_number(header, "ESO DET OUTPUTS", frame, None))
        if n < 1:
            raise CalibrationError(f"{frame}: ESO DET OUTPUTS = {count!r} names no output")
        return [(f"OUT{i}", f"ESO DET OUT{i} ") for i in range(1, n + 1)]
    if header.get("ESO DET OUT1 NX") is not None:
        return [("OUT1", "ESO DET OUT1 ")]
    if header.get("ESO DET OUT NX") is not None:  # one output per extension, unnumbered
        return [("OUT", "ESO DET OUT ")]
    return []


def _low_sides(locations: list[float], sizes: list[int], frame: str) -> list[bool]:
    """Whether each output reads from the low end of an axis: of two locations the smaller;
    a single location near the start of its own span (``(X - 1) mod NX < NX / 2``, which
    holds for binned sizes and outputs numbered across a mosaic too)."""
    distinct = sorted(set(locations))
    if len(distinct) > 2:
        raise CalibrationError(
            f"{frame}: {len(distinct)} output locations along one axis (an ESO chip has one or two)"
        )
    if len(distinct) == 2:
        return [loc == distinct[0] for loc in locations]
    return [((loc - 1) % size) < size / 2 for loc, size in zip(locations, sizes, strict=True)]


def eso_outputs(
    header: Mapping[str, Any], shape: tuple[int, int], frame: str
) -> tuple[Output, ...]:
    """The outputs of one raw image from its ``ESO DET OUTi`` keywords (the extension's,
    then the primary's, as the caller merged them); empty when it has none.

    Raises
    ------
    CalibrationError
        Naming the frame: a missing or non-numeric keyword, more than two outputs along an
        axis, outputs of one side with different strips, or an array whose shape is not the
        outputs' (binned or cut frames whose keywords describe another readout).
    """
    prefixes = _prefixes(header, frame)
    if not prefixes:
        return ()
    spec = []
    for name, prefix in prefixes:
        values = {k: _number(header, prefix + k, frame, None) for k in ("NX", "NY")}
        values["X"] = _number(header, prefix + "X", frame, 1.0)
        values["Y"] = _number(header, prefix + "Y", frame, 1.0)
        values.update({k: _number(header, prefix + k, frame, 0.0) for k in _STRIPS})
        for key in ("NX", "NY", *_STRIPS):
            least = 1 if key in ("NX", "NY") else 0
            if values[key] < least or values[key] != int(values[key]):
                raise CalibrationError(f"{frame}: {prefix}{key} = {values[key]:g} is not a count")
        gain = header.get(prefix + "CONAD")
        noise = header.get(prefix + "RON")
        spec.append(
            (
                name,
                {k: int(v) if k not in ("X", "Y") else v for k, v in values.items()},
                None if gain is None else _number(header, prefix + "CONAD", frame, None),
                None if noise is None else _number(header, prefix + "RON", frame, None),
            )
        )
    low_x = _low_sides([s[1]["X"] for s in spec], [s[1]["NX"] for s in spec], frame)
    low_y = _low_sides([s[1]["Y"] for s in spec], [s[1]["NY"] for s in spec], frame)

    def spans(axis: str, low: list[bool]) -> tuple[dict[bool, tuple[int, int]], int]:
        """Per side (low end or not): (raw extent with strips, valid pixels); the raw size."""
        pre, over, size = f"PRSC{axis}", f"OVSC{axis}", f"N{axis}"
        sides: dict[bool, tuple[int, int]] = {}
        for (name, v, _, _), side in zip(spec, low, strict=True):
            extent = (v[pre] + v[size] + v[over], v[size])
            if sides.setdefault(side, extent) != extent:
                raise CalibrationError(
                    f"{frame}: the outputs on one side differ along {axis} ({name}: "
                    f"{v[pre]} + {v[size]} + {v[over]} pixels)"
                )
        return sides, sum(extent for extent, _ in sides.values())

    sides_x, width = spans("X", low_x)
    sides_y, height = spans("Y", low_y)
    if (height, width) != tuple(shape):
        raise CalibrationError(
            f"{frame}: its {shape[1]}x{shape[0]} pixels are not the {width}x{height} its "
            "ESO DET OUTi keywords describe"
        )
    outputs = []
    for (name, v, gain, noise), lx, ly in zip(spec, low_x, low_y, strict=True):
        x_raw, x_valid, px = _axis(v, "X", lx, sides_x)
        y_raw, y_valid, py = _axis(v, "Y", ly, sides_y)
        valid = (y_valid, x_valid)
        if v["OVSCX"] or v["PRSCX"]:  # columns beside the pixels: one level per row
            strip = x_raw["OVSCX"] if v["OVSCX"] else x_raw["PRSCX"]
            overscan: tuple[tuple[slice, slice], int] | None = ((y_valid, strip), 1)
        elif v["OVSCY"] or v["PRSCY"]:
            strip = y_raw["OVSCY"] if v["OVSCY"] else y_raw["PRSCY"]
            overscan = ((strip, x_valid), 0)
        else:
            overscan = None
        outputs.append(Output(name, valid, overscan, (py, px), gain, noise))
    return tuple(outputs)


def _axis(
    v: Mapping[str, int], axis: str, low: bool, sides: Mapping[bool, tuple[int, int]]
) -> tuple[dict[str, slice], slice, int]:
    """One output's raw strips and valid span along an axis, and where its valid pixels
    start in the product."""
    pre, over, n = v[f"PRSC{axis}"], v[f"OVSC{axis}"], v[f"N{axis}"]
    start = 0 if low else sides.get(True, (0, 0))[0]
    place = 0 if low else sides.get(True, (0, 0))[1]
    if low:  # [prescan][valid][overscan]
        strips = {
            f"PRSC{axis}": slice(start, start + pre),
            f"OVSC{axis}": slice(start + pre + n, start + pre + n + over),
        }
        valid = slice(start + pre, start + pre + n)
    else:  # read the other way: [overscan][valid][prescan]
        strips = {
            f"OVSC{axis}": slice(start, start + over),
            f"PRSC{axis}": slice(start + over + n, start + over + n + pre),
        }
        valid = slice(start + over, start + over + n)
    return strips, valid, place


def raw_outputs(raw: np.ndarray, outputs: Sequence[Output]) -> np.ndarray:
    """The outputs' valid raw pixels joined as the product lays them out (same dtype): what
    saturation is judged on."""
    out = np.empty(outputs_shape(outputs), raw.dtype)
    for o in outputs:
        out[o.region] = raw[o.valid]
    return out


def outputs_shape(outputs: Sequence[Output]) -> tuple[int, int]:
    """``(rows, columns)`` of the product the outputs' valid pixels make."""
    return (
        max(o.place[0] + o.shape[0] for o in outputs),
        max(o.place[1] + o.shape[1] for o in outputs),
    )
