"""The pre-processing chain of a raw CCD frame, in ccdproc's order and with its numbers:
overscan subtraction, trim, gain (ADU -> electrons), and the variance of the result.

Pure numpy on one amplifier's or extension's pixels; the sections, gain and read noise come
from the instrument definition (:class:`astroflow.models.rules.Detector`), resolved against
the frame's header by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from astroflow.models.errors import CalibrationError, ProcessingError
from astroflow.models.rules import Detector, DetectorValue
from astroflow.processing.outputs import Output, eso_outputs, outputs_shape, raw_outputs
from astroflow.processing.sections import parse_section

__all__ = [
    "Geometry",
    "Preprocessed",
    "geometry",
    "overscan_model",
    "preprocess",
    "preprocess_frame",
    "raw_kept",
    "variance_electrons",
]


def overscan_model(
    strip: np.ndarray, axis: int, method: str = "median", order: int | None = None
) -> np.ndarray:
    """The level to subtract, one value per row (``axis=1``: the strip is columns beside the
    image, averaged along each row) or per column (``axis=0``).

    ``method`` is ``median`` or ``mean`` of each row/column of the strip
    (``ccdproc.subtract_overscan(median=...)``); with ``order`` a least-squares polynomial of
    that order is fitted to those values along the other axis and evaluated there (ccdproc's
    ``model=Polynomial1D(order)`` with astropy's ``LinearLSQFitter``).

    Returns
    -------
    numpy.ndarray
        Shape ``(rows, 1)`` for ``axis=1``, ``(1, columns)`` for ``axis=0``, float64.
    """
    data = np.asarray(strip, np.float64)
    if method == "median":
        levels = np.median(data, axis=axis)
    elif method == "mean":
        levels = np.mean(data, axis=axis)
    else:
        raise ProcessingError(f"overscan method {method!r}: use median or mean")
    if order is not None:
        x = np.arange(levels.size, dtype=np.float64)
        coeffs = np.polynomial.polynomial.polyfit(x, levels, order)
        levels = np.polynomial.polynomial.polyval(x, coeffs)
    return levels.reshape((-1, 1) if axis == 1 else (1, -1))


@dataclass(frozen=True)
class Preprocessed:
    """A frame after overscan, trim and gain: electrons, and what was done (for HISTORY)."""

    data: np.ndarray  # float64, electrons (ADU when no gain was applied)
    steps: tuple[str, ...]
    origin: tuple[int, int]  # 0-based (x0, y0) of the kept region in the raw frame
    #: ``((rows, columns), read noise e-)`` of each output of a several-output image (empty:
    #: one output, the geometry's read noise)
    regions: tuple[tuple[tuple[slice, slice], float | None], ...] = ()


def preprocess(
    raw: np.ndarray,
    *,
    overscans: Sequence[tuple[tuple[slice, slice], int]] = (),
    trim: tuple[slice, slice] | None = None,
    gain: float | None = None,
    method: str = "median",
    order: int | None = None,
) -> Preprocessed:
    """Overscan-subtract, trim and gain-correct one amplifier's or extension's pixels.

    Parameters
    ----------
    raw
        The raw pixels (ADU), ``[rows, columns]``.
    overscans
        ``((rows, columns), axis)`` of each overscan strip, in raw pixels, and the axis it is
        averaged along (1: one level per row). Their models add up (one strip per readout
        direction).
    trim
        ``(rows, columns)`` of the data to keep (None: all).
    gain
        e-/ADU; None leaves the frame in ADU.

    Raises
    ------
    CalibrationError
        For a non-positive gain, or a section outside the frame.
    """
    raw = np.asarray(raw)
    height, width = raw.shape
    steps: list[str] = []
    rows_kept, columns_kept = trim if trim is not None else (slice(None), slice(None))
    kept = raw[rows_kept, columns_kept]
    if kept.size == 0:
        raise CalibrationError(f"trim section lies outside the {width}x{height} frame")
    # Each kept pixel gets exactly ccdproc's arithmetic (raw - level, then the cut): the
    # levels come from the whole frame, and are subtracted from the kept region only.
    data = kept.astype(np.float64)
    for (rows, columns), axis in overscans:
        strip = raw[rows, columns]
        if strip.size == 0:
            raise CalibrationError(f"overscan section lies outside the {width}x{height} frame")
        level = overscan_model(strip, axis, method, order)
        if axis == 1 and level.shape[0] != height:
            level = _spread(level, rows, height, axis)
        if axis == 0 and level.shape[1] != width:
            level = _spread(level, columns, width, axis)
        data -= level[rows_kept, :] if axis == 1 else level[:, columns_kept]
        what = "per row" if axis == 1 else "per column"
        fit = f", polynomial of order {order}" if order is not None else ""
        steps.append(f"overscan: {method} {what}{fit}")
    origin = (0, 0)
    if trim is not None:
        origin = (columns_kept.indices(width)[0], rows_kept.indices(height)[0])
        steps.append(
            f"trim: x {origin[0] + 1}.., y {origin[1] + 1}.. kept, {kept.shape[1]}x{kept.shape[0]}"
        )
    if gain is not None:
        if not gain > 0:
            raise CalibrationError(f"gain {gain} e-/ADU is not positive")
        data *= gain
        steps.append(f"gain: x {gain:g} e-/ADU")
    return Preprocessed(data, tuple(steps), origin)


def _spread(level: np.ndarray, span: slice, size: int, axis: int) -> np.ndarray:
    """A strip shorter than the frame along the other axis: its levels where it lies, its
    edge values beyond."""
    start = span.indices(size)[0]
    values = level.ravel()
    full = np.empty(size, np.float64)
    full[start : start + values.size] = values
    full[:start] = values[0]
    full[start + values.size :] = values[-1]
    return full.reshape((-1, 1) if axis == 1 else (1, -1))


def variance_electrons(electrons: np.ndarray, read_noise: float) -> np.ndarray:
    """Variance (e-^2) of a frame in electrons: Poisson noise of its signal plus the read
    noise (e-) squared; negative signal counts no Poisson noise."""
    return np.clip(electrons, 0, None) + read_noise**2


@dataclass(frozen=True)
class Geometry:
    """A detector definition resolved against one frame's header: what to do to it."""

    overscans: tuple[tuple[tuple[slice, slice], int], ...]
    trim: tuple[slice, slice] | None
    gain: float | None
    read_noise: float | None
    saturation: float | None
    sources: tuple[str, ...]  # where each came from, for HISTORY ("gain 1.9 from GAIN")
    #: the outputs of an image several amplifiers read (``outputs: eso``); empty: one
    outputs: tuple[Output, ...] = ()


def _lookup(
    value: DetectorValue | None,
    header: Mapping[str, Any],
    what: str,
    frame: str,
    required: bool,
    *,
    section: bool,
) -> tuple[Any, str]:
    """A detector property's value for one frame, and where it came from."""
    if value is None:
        if required:
            raise CalibrationError(f"{frame}: the rules require {what} but give none")
        return None, ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), f"{what} {value:g} from the rules"
    text = str(value).strip()
    if text.startswith("["):
        return text, f"{what} {text} from the rules"
    found = header.get(text)
    if found is None or (isinstance(found, str) and not found.strip()):
        if required:
            raise CalibrationError(f"{frame}: no {text} in its header ({what} is required)")
        return None, ""
    if section:
        return str(found), f"{what} {str(found).strip()} from {text}"
    try:
        number = float(found)
    except (TypeError, ValueError):
        raise CalibrationError(f"{frame}: {text} = {found!r} is not a number ({what})") from None
    return number, f"{what} {number:g} from {text}"


def geometry(
    detector: Detector, header: Mapping[str, Any], frame: str, shape: tuple[int, int]
) -> Geometry:
    """Resolve ``detector`` (its extension overrides already applied) against a frame's
    header (extension cards first, then the primary's, as the caller merged them).

    Raises
    ------
    CalibrationError
        Naming the frame and the keyword, for a required property that is missing or a value
        that is not a number or a section.
    """
    need = set(detector.required)
    if detector.outputs == "eso":
        outputs = eso_outputs(header, shape, frame)
        if outputs:
            return _outputs_geometry(detector, header, frame, outputs)
    sources: list[str] = []
    overscans = []
    for item in detector.overscan:
        text, source = _lookup(item, header, "overscan", frame, "overscan" in need, section=True)
        if text is None:
            continue
        try:
            rows, columns = parse_section(text)
        except ProcessingError as exc:
            raise CalibrationError(f"{frame}: {exc}") from None
        strip = (len(range(*rows.indices(shape[0]))), len(range(*columns.indices(shape[1]))))
        if detector.overscan_axis == "columns":
            axis = 1
        elif detector.overscan_axis == "rows":
            axis = 0
        else:  # ccdproc's choice: the strip's long side runs along the readout
            axis = 0 if strip[1] > strip[0] else 1
        overscans.append(((rows, columns), axis))
        sources.append(source)
    if detector.overscan and not overscans and "overscan" in need:
        raise CalibrationError(f"{frame}: no overscan section")
    trim_text, source = _lookup(detector.trim, header, "trim", frame, "trim" in need, section=True)
    trim = None
    if trim_text is not None:
        try:
            trim = parse_section(trim_text)
        except ProcessingError as exc:
            raise CalibrationError(f"{frame}: {exc}") from None
        sources.append(source)
    numbers = {}
    for what in ("gain", "read_noise", "saturation"):
        number, source = _lookup(
            getattr(detector, what),
            header,
            what.replace("_", " "),
            frame,
            what in need,
            section=False,
        )
        numbers[what] = number
        if source:
            sources.append(source)
    return Geometry(
        overscans=tuple(overscans),
        trim=trim,
        gain=numbers["gain"],
        read_noise=numbers["read_noise"],
        saturation=numbers["saturation"],
        sources=tuple(sources),
    )


def _outputs_geometry(
    detector: Detector, header: Mapping[str, Any], frame: str, outputs: tuple[Output, ...]
) -> Geometry:
    """A several-output image's geometry: each output's gain and read noise from its
    ``CONAD``/``RON`` unless the rules give numbers for all."""
    need = set(detector.required)
    sources = [f"{len(outputs)} output(s) from ESO DET OUTi"]
    fixed = {}
    for what in ("gain", "read_noise"):
        value = getattr(detector, what)
        if isinstance(value, int | float) and not isinstance(value, bool):
            fixed[what] = float(value)
            sources.append(f"{what.replace('_', ' ')} {value:g} from the rules")
    resolved = []
    for o in outputs:
        o = replace(o, **fixed) if fixed else o
        for what, key in (("gain", "CONAD"), ("read_noise", "RON")):
            if getattr(o, what) is None and what in need:
                keyword = f"ESO DET {o.name} {key}" if o.name != "OUT" else f"ESO DET OUT {key}"
                raise CalibrationError(
                    f"{frame}: no {keyword} in its header ({what.replace('_', ' ')} is required)"
                )
        if "gain" not in fixed and o.gain is not None:
            sources.append(f"gain {o.gain:g} from ESO DET {o.name} CONAD")
        resolved.append(o)
    gains = [o.gain for o in resolved]
    if any(g is None for g in gains) and any(g is not None for g in gains):
        missing = next(o.name for o in resolved if o.gain is None)
        raise CalibrationError(
            f"{frame}: ESO DET {missing} CONAD is missing while other outputs have one"
        )
    saturation, source = _lookup(
        detector.saturation, header, "saturation", frame, "saturation" in need, section=False
    )
    if source:
        sources.append(source)
    noises = [o.read_noise for o in resolved if o.read_noise is not None]
    return Geometry(
        overscans=(),
        trim=None,
        # the lowest gain turns the saturation (ADU) into the fewest electrons
        gain=min(g for g in gains if g is not None) if gains[0] is not None else None,
        read_noise=max(noises) if noises else None,
        saturation=saturation,
        sources=tuple(sources),
        outputs=tuple(resolved),
    )


def preprocess_frame(
    raw: np.ndarray, geo: Geometry, method: str, order: int | None
) -> Preprocessed:
    """:func:`preprocess` with a resolved :class:`Geometry`; a several-output image output
    by output (each with its own strip and gain), its outputs' valid pixels joined."""
    if not geo.outputs:
        return preprocess(
            raw, overscans=geo.overscans, trim=geo.trim, gain=geo.gain, method=method, order=order
        )
    image = np.empty(outputs_shape(geo.outputs), np.float64)
    steps = []
    for o in geo.outputs:
        done = preprocess(
            raw,
            overscans=(o.overscan,) if o.overscan is not None else (),
            trim=o.valid,
            gain=o.gain,
            method=method,
            order=order,
        )
        image[o.region] = done.data
        rows, columns = o.valid
        steps.append(
            f"{o.name} (x {columns.start + 1}..{columns.stop}, y {rows.start + 1}..{rows.stop}"
            f" to x {o.place[1] + 1}, y {o.place[0] + 1}): {'; '.join(done.steps)}"
        )
    first = min(geo.outputs, key=lambda o: o.place)  # the product's pixel (0, 0)
    origin = (first.valid[1].start, first.valid[0].start)
    regions = tuple((o.region, o.read_noise) for o in geo.outputs)
    return Preprocessed(image, tuple(steps), origin, regions)


def raw_kept(raw: np.ndarray, geo: Geometry) -> np.ndarray:
    """The raw pixels (ADU) that make the product, laid out as it is: what saturation is
    judged on."""
    if geo.outputs:
        return raw_outputs(raw, geo.outputs)
    return raw[geo.trim] if geo.trim is not None else raw
