"""The recipes of the calibration cascade as plain functions (no Prefect import).

Each recipe reads its SOF's frames, calls the pure maths, writes one product FITS with
provenance and QC keywords, records QC rows and the product's status (``fail`` when it starts,
``pass`` only on success) and returns a small :class:`RecipeResult`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astroflow.models import astroflow_version
from astroflow.models.cascade import WCS_ORIGIN_KEY, RecipeInput, RecipeResult
from astroflow.models.errors import AstrometryError, CalibrationError, ProcessingError
from astroflow.models.rules import Combine
from astroflow.models.settings import Settings
from astroflow.processing.astrometry import (
    astrometric_rms,
    solution_wcs,
    solve_hint,
    with_solution,
)
from astroflow.processing.bad_pixels import (
    BPM_FLAT,
    BPM_HOT,
    bad_pixel_mask,
    flat_corrected,
    flat_ratio,
    hot_pixels,
    qc_bad_pixels,
    ratio_mask,
    split_levels,
)
from astroflow.processing.calibration import (
    MASK_BAD,
    MASK_BAD_PIXEL,
    MASK_NONFINITE,
    MASK_SATURATED,
    dark_rate,
    flat_normalised,
    grid_step,
    metric_name,
    qc_bias,
    qc_dark,
    qc_failures,
    qc_flat,
    qc_science,
    reduce_frame,
    reduce_regions,
    sampled,
    within,
)
from astroflow.processing.combine import clipped_mean, combine_with, row_chunks
from astroflow.processing.cosmics import MASK_COSMIC_RAY, detect_cosmic_rays
from astroflow.processing.image_quality import measure_frame
from astroflow.processing.preprocess import (
    Geometry,
    Preprocessed,
    geometry,
    preprocess_frame,
    raw_kept,
)
from astroflow.processing.wcs import pixel_scale_arcsec, trimmed_header
from astroflow.storage.astrometry import AstrometryNet, SolveHint, solver_available
from astroflow.storage.database import Database
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.frames import (
    Extension,
    PixelCache,
    ProductPart,
    image_extensions,
    inputs_hash,
    mark_qc_verdict,
    opened,
    read_calibration,
    read_data,
    read_header,
    write_mef_product,
    write_product,
)
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.recipes import Recipe, recipe_function

log = logging.getLogger(__name__)
HASH_KEY = "AF_INHSH"


def qc_keyword(name: str) -> str:
    """FITS keyword of a QC value: ``QC`` + the name without underscores, 8 characters."""
    return ("QC" + name.replace("_", "").upper())[:8]


def combine(
    frames: Sequence[Any],
    shape: tuple[int, int],
    sigma: float = 3.0,
    maxiters: int = 3,
    budget_bytes: int | None = None,
    options: Combine | None = None,
) -> np.ndarray:
    """Combine frames given as row-band readers (``frame[r0:r1]``), one chunk of rows at a
    time so that memory stays within ``budget_bytes`` of stack (default: the setting
    ``ASTROFLOW_COMBINE_BUDGET_MB``): the sigma-clipped mean of the numba kernel, or the
    combination ``options`` (the recipe's ``combine`` in the rules) ask for
    (:func:`combine_with`, with each frame's scale and weight measured on the whole frame)."""
    if not frames:
        raise CalibrationError("no frames to combine")
    options = options or Combine(sigma=sigma, maxiters=maxiters)
    budget = budget_bytes or Settings().combine_budget_mb * 2**20
    out = np.empty(shape, np.float32)
    chunks = row_chunks(shape[0], len(frames), shape[1], budget // 2)
    scales = weights = None
    if not options.default:
        whole = [np.asarray(f[0 : shape[0]], np.float64) for f in frames]
        if options.scale == "median":
            scales = np.array([1.0 / np.nanmedian(w) for w in whole])
        if options.weights == "variance":
            from astropy.stats import mad_std

            weights = np.array([1.0 / mad_std(w, ignore_nan=True) ** 2 for w in whole])
        del whole

    def read(r0: int, r1: int) -> np.ndarray:
        cube = np.empty((len(frames), r1 - r0, shape[1]), np.float32)
        for i, frame in enumerate(frames):
            cube[i] = frame[r0:r1]
        return cube

    # Read the next band while the (GIL-free) kernel works on this one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending = pool.submit(read, *chunks[0])
        for k, (r0, r1) in enumerate(chunks):
            cube = pending.result()
            if k + 1 < len(chunks):
                pending = pool.submit(read, *chunks[k + 1])
            if options.default:
                out[r0:r1], _ = clipped_mean(cube, options.sigma or 3.0, options.maxiters)
            else:
                out[r0:r1] = combine_with(cube, options, scales, weights)
            del cube
    return out


def _calib(inp: RecipeInput, tag: str) -> Path:
    for t, path in inp.calibrations:
        if t == tag:
            return Path(path)
    raise CalibrationError(f"{inp.set_name}: SOF has no {tag}")


def _calib_data(inp: RecipeInput, tag: str) -> np.ndarray:
    """The pixels of the SOF's calibration ``tag`` as stored (float32, read-only: shared by
    the frames of a night, see :func:`read_calibration`)."""
    path = _calib(inp, tag)
    if not path.exists():
        raise CalibrationError(f"{inp.set_name}: calibration {path.name} ({tag}) does not exist")
    return read_calibration(path, inp.extension or 0)


def _exptime(path: Path, key: str, ext: Extension | None = None) -> float:
    header = read_header(path, ext)
    try:
        return float(header[key])
    except (KeyError, TypeError, ValueError):
        raise ProcessingError(f"{path.name}: no numeric {key}") from None


def _all_inputs(inp: RecipeInput) -> list[Path]:
    return [Path(p) for p in inp.raw] + [Path(p) for _, p in inp.calibrations]


#: The options of the rules a product depends on besides its input files (its QC ranges are
#: not among them: a range change re-judges, it does not remake).
RECIPE_OPTIONS = (
    "function",
    "detector",
    "cosmic_rays",
    "combine",
    "image_quality",
    "bad_pixels",
    "bad_pixel_mask",
    "solve",
)


def _fingerprint(inp: RecipeInput) -> str:
    """What a product is made from: its input files (path, size, mtime; the static
    bad-pixel mask's too) and the recipe's options in the rules, so that a changed option
    (cosmic rays turned on, another combine method) remakes it like a changed frame.
    Options at their defaults are left out, so that a new option (a new field of the rules
    with a default that keeps today's behaviour) remakes nothing."""
    import hashlib
    import json

    files = _all_inputs(inp) + ([Path(inp.bad_pixels)] if inp.bad_pixels else [])
    options = inp.model_dump(mode="json", include=set(RECIPE_OPTIONS), exclude_defaults=True)
    digest = hashlib.sha256(inputs_hash([p for p in files if p.exists()]).encode())
    digest.update(json.dumps(options, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _of_common_shape(frames: list[Any]) -> tuple[list[Any], list[str]]:
    """The frames of the set's shape (the most common one; ties: the first frame's), and a
    reason for each other frame, which is dropped like an unreadable one."""
    if not frames:
        return frames, []
    counts: dict[tuple[int, ...], int] = {}
    for f in frames:
        counts[f.shape] = counts.get(f.shape, 0) + 1
    shape = max(counts, key=lambda s: (counts[s], s == frames[0].shape))
    keep = [f for f in frames if f.shape == shape]
    odd = [
        f"{f.path.name}: shape {f.shape[1]}x{f.shape[0]} differs from the set's "
        f"{shape[1]}x{shape[0]} (dropped)"
        for f in frames
        if f.shape != shape
    ]
    return keep, odd  # ``opened`` closes every frame, the dropped ones too


def combine_set(
    inp: RecipeInput, prepare: Callable[[np.ndarray, Path], np.ndarray] | None = None
) -> tuple[np.ndarray, list[str], list[Path]]:
    """For recipe functions: the sigma-clipped mean of the SOF's raw frames, each first passed
    through ``prepare(pixels, path)`` when given (pre-processed frames go to the pixel cache);
    odd-shaped and unreadable frames are dropped with their reasons.

    Returns
    -------
    master, dropped, used
    """
    return _combine_recipe(inp, prepare)


def calibration(inp: RecipeInput, tag: str) -> np.ndarray:
    """For recipe functions: the pixels of the SOF's calibration ``tag`` (``MASTER_BIAS``...),
    float64, the recipe's own copy."""
    return _calib_data(inp, tag).astype(np.float64)


def _combine_recipe(
    inp: RecipeInput, prepare: Callable[[np.ndarray, Path], np.ndarray] | None
) -> tuple[np.ndarray, list[str], list[Path]]:
    """Combine the SOF's raw frames (optionally pre-processed into the pixel cache)."""
    paths = [Path(p) for p in inp.raw]
    with opened(paths, inp.extension) as (frames, bad):
        dropped = [reason for _, reason in bad]
        frames, odd = _of_common_shape(frames)
        dropped += odd
        good_paths = [f.path for f in frames]
        if prepare is not None:
            cache = PixelCache(Workspace.from_ref(inp.workspace).session_dir(inp.session))
            try:
                readers = []
                for frame in list(frames):
                    try:
                        pixels = frame[:]
                        try:
                            prepared = prepare(pixels, frame.path)
                        except ValueError as exc:  # numpy: shapes do not broadcast
                            raise ProcessingError(
                                f"{frame.path.name}: shape {pixels.shape} does not fit the "
                                f"set's calibrations ({exc})"
                            ) from None
                        readers.append(cache.add(prepared))
                    except ProcessingError as exc:
                        dropped.append(str(exc))
                        good_paths.remove(frame.path)
                if len(readers) < inp.min_frames:
                    raise CalibrationError(
                        f"{inp.set_name}: only {len(readers)} usable frame(s), need "
                        f"{inp.min_frames}: {'; '.join(dropped)}"
                    )
                master = combine(readers, readers[0].shape, options=inp.combine)
            finally:
                cache.close()
        else:
            if len(frames) < inp.min_frames:
                raise CalibrationError(
                    f"{inp.set_name}: only {len(frames)} usable frame(s), need {inp.min_frames}: "
                    f"{'; '.join(dropped)}"
                )
            master = combine(frames, frames[0].shape, options=inp.combine)
    return master, dropped, good_paths


def _geometry(inp: RecipeInput, path: Path, header: Any, shape: tuple[int, ...]) -> Geometry:
    """The rules' detector definition resolved against one raw frame's header."""
    assert inp.detector is not None
    detector = inp.detector.for_extension(str(header.get("EXTNAME", "PRIMARY")).strip())
    return geometry(detector, header, path.name, (int(shape[0]), int(shape[1])))


def _preprocessed(inp: RecipeInput, raw: np.ndarray, path: Path) -> tuple[Preprocessed, Geometry]:
    """A raw frame overscan-subtracted, trimmed and in electrons, as its rules say."""
    assert inp.detector is not None
    geo = _geometry(inp, path, read_header(path, inp.extension), raw.shape)
    if inp.detector.gain is not None and geo.gain is None:  # (a named gain is required)
        raise CalibrationError(f"{path.name}: no {inp.detector.gain} in its header (gain)")
    done = preprocess_frame(raw, geo, inp.detector.overscan_method, inp.detector.overscan_order)
    return done, geo


class _Electrons:
    """Each raw frame's pre-processing (overscan, trim, gain) when the rules describe the
    detector, the frame as it is otherwise; remembers what was done to the frames (the
    master's HISTORY and unit), so that no frame is pre-processed only to say so."""

    def __init__(self, inp: RecipeInput, keep: int = 0) -> None:
        self.inp = inp
        self.history: tuple[str, ...] = ()
        self.unit = "adu"
        self.keep = keep
        #: the :func:`sampled` grid of the first ``keep`` frames, pre-processed (float64)
        self.grids: list[np.ndarray] = []

    def __call__(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if self.inp.detector is None:
            return raw
        done, geo = _preprocessed(self.inp, raw, path)
        if not self.history:
            self.history = tuple(f"pre: {s}" for s in (*done.steps, *geo.sources))
            self.unit = "electron" if geo.gain is not None else "adu"
        if len(self.grids) < self.keep:
            k = grid_step(done.data.shape)
            self.grids.append(done.data[::k, ::k].copy())
        return done.data.astype(np.float32)


def _electrons(inp: RecipeInput, keep: int = 0) -> _Electrons:
    return _Electrons(inp, keep)


def _master(inp: RecipeInput, master: np.ndarray, pre: _Electrons) -> np.ndarray | Product:
    """A master with its unit and the pre-processing its frames had (HISTORY)."""
    if inp.detector is None or not pre.history:
        return master
    return Product(
        master,
        cards={"BUNIT": (pre.unit, "pre-processed, then combined")},
        history=pre.history,
    )


def _bias(inp: RecipeInput) -> tuple[Any, dict[str, float], list[str], list[Path]]:
    pre = _electrons(inp, keep=2)  # two frames' grids for the read noise
    master, dropped, used = _combine_recipe(inp, None if inp.detector is None else pre)
    ext = inp.extension or 0
    if inp.detector is not None and len(pre.grids) == 2:
        a, b = pre.grids
    elif inp.detector is None and len(used) >= 2:
        a, b = read_data(used[0], ext), read_data(used[1], ext)
    else:
        a = b = None
    return _master(inp, master, pre), qc_bias(master, a, b), dropped, used


def _dark(inp: RecipeInput) -> tuple[Any, dict[str, float], list[str], list[Path]]:
    bias = _calib_data(inp, "MASTER_BIAS")
    pre = _electrons(inp)
    master, dropped, used = _combine_recipe(
        inp,
        lambda raw, path: dark_rate(
            pre(raw, path), bias, _exptime(path, inp.exptime_key, inp.extension)
        ),
    )
    return _master(inp, master, pre), qc_dark(master), dropped, used


def _optional(inp: RecipeInput, tag: str, like: np.ndarray, value: float) -> np.ndarray:
    """A calibration the rules may leave out (a dark for a camera without dark current): its
    pixels when the SOF names it, else ``value`` everywhere."""
    if any(t == tag for t, _ in inp.calibrations):
        return _calib_data(inp, tag)
    return np.full(like.shape, value, np.float32)


def _flat(inp: RecipeInput) -> tuple[Any, dict[str, float], list[str], list[Path]]:
    bias = _calib_data(inp, "MASTER_BIAS")
    dark = _optional(inp, "MASTER_DARK", bias, 0.0)
    pre = _electrons(inp)
    master, dropped, used = _combine_recipe(
        inp,
        lambda raw, path: flat_normalised(
            pre(raw, path), bias, dark, _exptime(path, inp.exptime_key, inp.extension)
        ),
    )
    level = float(np.nanmedian(master))
    if not level > 0:
        raise CalibrationError(f"{inp.set_name}: combined flat level {level} is not positive")
    master = (master / level).astype(np.float32)
    return _master(inp, master, pre), qc_flat(master), dropped, used


@dataclass(frozen=True)
class Product:
    """What a recipe makes when its product is more than one image: the primary pixels, the
    planes written after them as named extensions, header cards of its own, and the header
    (of its raw frame) the product's header starts from."""

    data: np.ndarray
    planes: tuple[tuple[str, np.ndarray], ...] = ()
    cards: dict[str, Any] = field(default_factory=dict)
    base_header: Any = None
    history: tuple[str, ...] = ()
    #: what the recipe went on without, ``(error type, message)``: noncritical reports
    notes: tuple[tuple[str, str], ...] = ()


def _bad_pixels(inp: RecipeInput, shape: tuple[int, ...]) -> np.ndarray:
    """The instrument's static bad-pixel mask (its extension of this run's, for a
    multi-extension frame) as booleans of the reduced frame's shape.

    Raises
    ------
    CalibrationError
        Naming the file, when it is missing, unreadable or of another shape.
    """
    assert inp.bad_pixels is not None
    path = Path(inp.bad_pixels)
    if not path.is_file():
        raise CalibrationError(f"bad-pixel mask {path} (rules: bad_pixels) does not exist")
    try:
        pixels = read_calibration(path, inp.extension or 0)
    except (ProcessingError, KeyError) as exc:
        raise CalibrationError(f"bad-pixel mask {path}: {exc}") from None
    if pixels.shape != shape:
        raise CalibrationError(
            f"bad-pixel mask {path.name} is {pixels.shape[1]}x{pixels.shape[0]}, the reduced "
            f"frame {shape[1]}x{shape[0]}"
        )
    return pixels != 0


def _mbpm(inp: RecipeInput) -> tuple[Product, dict[str, float], list[str], list[Path]]:
    """The bad-pixel mask of a set of flats of two levels (and its master dark's hot pixels):
    the flats are split by level, each group combined, and ``ccdmask`` reads their ratio,
    which the product keeps as its ``RATIO`` plane."""
    options = inp.bad_pixel_mask
    bias = _calib_data(inp, "MASTER_BIAS")
    dark = _optional(inp, "MASTER_DARK", bias, 0.0)
    pre = _electrons(inp)
    ext = inp.extension or 0

    def corrected(raw: np.ndarray, path: Path) -> np.ndarray:
        exptime = _exptime(path, inp.exptime_key, inp.extension)
        return flat_corrected(pre(raw, path), bias, dark, exptime)

    levels: list[float] = []
    readable: list[str] = []
    dropped: list[str] = []
    for name in inp.raw:
        path = Path(name)
        try:
            pixels = corrected(read_data(path, ext), path)
        except (ProcessingError, ValueError) as exc:
            dropped.append(f"{path.name}: {exc}")
            continue
        levels.append(float(np.nanmedian(sampled(pixels))))
        readable.append(name)
    if len(readable) < inp.min_frames:
        raise CalibrationError(
            f"{inp.set_name}: only {len(readable)} usable frame(s), need {inp.min_frames}: "
            f"{'; '.join(dropped)}"
        )
    low, high = split_levels(levels, options.min_level_ratio, inp.set_name)
    combined = []
    used: list[Path] = []
    for group in (low, high):
        part = inp.model_copy(update={"raw": tuple(readable[i] for i in group), "min_frames": 1})
        master, lost, good = _combine_recipe(part, corrected)
        combined.append(master)
        dropped += lost
        used += good
    ratio = flat_ratio(combined[1], combined[0])
    del combined
    has_dark = any(tag == "MASTER_DARK" for tag, _ in inp.calibrations)
    hot = (
        hot_pixels(dark, options.hot_sigma) if has_dark and options.hot_sigma is not None else None
    )
    mask = bad_pixel_mask(ratio_mask(ratio, options), hot)
    level_ratio = float(np.mean([levels[i] for i in high]) / np.mean([levels[i] for i in low]))
    history = [
        f"bpm: {len(low)} flat(s) at ~{np.mean([levels[i] for i in low]):.4g}, {len(high)} "
        f"at ~{np.mean([levels[i] for i in high]):.4g}; ccdmask of their ratio (RATIO)",
    ]
    if hot is not None:
        history.append(
            f"bpm: hot pixels above the master dark's median + {options.hot_sigma:g} sigma"
        )
    product = Product(
        mask,
        planes=(("RATIO", ratio.astype(np.float32)),),
        cards={"AF_BPMV": (f"{BPM_FLAT} flats, {BPM_HOT} dark", "mask values: flagged by")},
        history=(*(f"pre: {s}" for s in pre.history), *history),
    )
    return product, qc_bad_pixels(mask, level_ratio), dropped, used


def _solving(inp: RecipeInput) -> bool:
    """Whether the ``solve`` step runs: as the rules say, or (by default) when astrometry.net
    and its index files are there."""
    if inp.solve.enabled is not None:
        return inp.solve.enabled
    return solver_available()


def _solve(
    inp: RecipeInput, sources: np.ndarray, shape: tuple[int, ...], header: Any
) -> tuple[Any, dict[str, float], list[str], list[tuple[str, str]]]:
    """The frame's header with its astrometric solution, the solution's QC values
    (``astrometric_rms`` in arcsec, ``matched_stars``), HISTORY and noncritical notes. A frame
    that does not solve (or a missing solver) keeps its header WCS with a note, or fails when
    the rules require a solution.

    Raises
    ------
    AstrometryError
        When it does not solve and ``solve.required``.
    """
    options = inp.solve
    name = Path(inp.raw[0]).name
    height, width = int(shape[0]), int(shape[1])

    def unsolved(message: str) -> tuple[Any, dict[str, float], list[str], list[tuple[str, str]]]:
        if options.required:
            raise AstrometryError(f"{message} (rules: solve.required)")
        return header, {}, [f"astrometry: {message}"], [("AstrometryError", message)]

    try:
        solver = AstrometryNet.from_settings()
    except AstrometryError as exc:
        return unsolved(f"{name}: not solved: {exc}; header WCS kept")
    if len(sources) < 5:
        return unsolved(f"{name}: not solved: {len(sources)} source(s) found; header WCS kept")
    hint = SolveHint(**solve_hint(header, width, height, options))
    result = solver.solve(
        sources[: options.max_sources],
        width,
        height,
        hint,
        time_limit_s=options.time_limit_s,
        sip_order=options.sip_order,
        label=name,
    )
    if result is None:
        how = "blind" if hint.ra is None else f"within {hint.radius:g} deg of the header's"
        return unsolved(
            f"{name}: not solved ({len(sources)} sources, {how}, {options.time_limit_s:g} s "
            "limit); header WCS kept"
        )
    wcs = solution_wcs(result.header, options.sip_order)
    rms = astrometric_rms(wcs, result.field_xy, result.index_radec)
    matched = len(result.field_xy)
    kind = f"TAN-SIP order {options.sip_order}" if options.sip_order >= 2 else "TAN"
    cards = {
        WCS_ORIGIN_KEY: ("astrometry", "WCS: astrometry.net solution (solve step)"),
        "AF_ASIDX": (result.index[-60:], "astrometry.net index that solved it"),
        "AF_ASSEC": (round(result.seconds, 3), "[s] solve time"),
        "AF_ASRMS": (round(rms, 4), "[arcsec] RMS of matched stars"),
        "AF_ASNST": (matched, "matched stars"),
    }
    history = [
        f"astrometry: {kind} solution by astrometry.net ({result.index}) in "
        f"{result.seconds:.2f} s: {matched} stars, rms {rms:.3f} arcsec"
    ]
    solved = with_solution(header, wcs, cards)
    return solved, {"astrometric_rms": rms, "matched_stars": float(matched)}, history, []


def _reduce(inp: RecipeInput) -> tuple[Product, dict[str, float], list[str], list[Path]]:
    raw_path = Path(inp.raw[0])
    raw = read_data(raw_path, inp.extension or 0)
    header = read_header(raw_path, inp.extension)
    # a product's extension keeps its own cards (the primary's go to the primary)
    own = read_header(raw_path, inp.extension, inherit=False) if inp.extension else header
    bias_path = _calib(inp, "MASTER_BIAS")
    bias = _calib_data(inp, "MASTER_BIAS")
    # the rules say what reduce needs: a calibration they do not ask for is left out
    dark = _optional(inp, "MASTER_DARK", bias, 0.0)
    flat = _optional(inp, "MASTER_FLAT", bias, 1.0)
    ron = read_header(bias_path, inp.extension).get("QCRON")
    ron = float(ron) if isinstance(ron, int | float) else 0.0
    exptime = _exptime(raw_path, inp.exptime_key, inp.extension)
    if inp.detector is None:
        frame, adu, steps, origin = raw, raw, (), (0, 0)
        gain = float(header.get(inp.gain_key, 1.0) or 1.0)
        saturation = float(header.get("SATURATE", 65000.0))
        unit = "adu"
    else:
        done, geo = _preprocessed(inp, raw, raw_path)
        frame, steps, origin = done.data, (*done.steps, *geo.sources), done.origin
        adu = raw_kept(raw, geo)  # saturation is judged in ADU
        gain = 1.0 if geo.gain is not None else float(header.get(inp.gain_key, 1.0) or 1.0)
        ron = geo.read_noise if geo.read_noise is not None else ron
        saturation = geo.saturation if geo.saturation is not None else 65535.0
        unit = "electron" if geo.gain is not None else "adu"
    if not (frame.shape == bias.shape == dark.shape == flat.shape):
        raise CalibrationError(
            f"{raw_path.name}: shape {frame.shape} differs from calibrations {bias.shape}"
        )
    if inp.detector is not None and done.regions:  # outputs with their own read noise
        regions = [(part, ron if noise is None else noise) for part, noise in done.regions]
        science, variance, mask = reduce_regions(
            frame, bias, dark, flat, exptime, gain, regions, np.inf
        )
    else:
        science, variance, mask = reduce_frame(frame, bias, dark, flat, exptime, gain, ron, np.inf)
    mask[np.asarray(adu) >= saturation] |= MASK_SATURATED
    if inp.bad_pixels:
        mask[_bad_pixels(inp, mask.shape)] |= MASK_BAD_PIXEL
    if any(tag == "MASTER_BPM" for tag, _ in inp.calibrations):
        bpm = _calib_data(inp, "MASTER_BPM")
        if bpm.shape != mask.shape:
            raise CalibrationError(
                f"{raw_path.name}: shape {mask.shape} differs from its bad-pixel mask {bpm.shape}"
            )
        mask[bpm != 0] |= MASK_BAD_PIXEL
    # the science frame's unit: electrons (gain 1) or ADU (gain e-/ADU); saturation in it
    in_unit = saturation * (geo.gain if inp.detector is not None and geo.gain else 1.0)
    history = [f"pre: {s}" for s in steps]
    qc = qc_science(science, mask)
    if inp.cosmic_rays is not None:
        hits, cleaned = detect_cosmic_rays(
            science,
            (mask & (MASK_BAD | MASK_SATURATED | MASK_NONFINITE | MASK_BAD_PIXEL)) != 0,
            gain=gain,
            read_noise=ron * gain,
            saturation=in_unit,
            rules=inp.cosmic_rays,
        )
        mask[hits] |= MASK_COSMIC_RAY
        qc["cosmic_rays"] = float(np.count_nonzero(hits))
        qc["masked_fraction"] = float(np.count_nonzero(mask) / mask.size)
        what = "replaced" if cleaned is not None else "flagged (MASK 8)"
        history.append(
            f"cosmic rays: L.A.Cosmic (astroscrappy's, processing.lacosmic), "
            f"{int(qc['cosmic_rays'])} {what}"
        )
        if cleaned is not None:
            science = cleaned
    solving = _solving(inp)
    sources = np.zeros((0, 3))
    if inp.image_quality or solving:
        measured, sources = measure_frame(
            science,
            mask != 0,
            saturation=in_unit,
            pixel_scale_arcsec=pixel_scale_arcsec(header),
            fit=inp.image_quality,
        )
        for name, value in measured.items() if inp.image_quality else ():
            qc.setdefault(name, value)  # sky_median stays the unmasked pixels' median
    base = trimmed_header(own, origin) if inp.detector is not None else own
    notes: list[tuple[str, str]] = []
    if solving:
        base, solved_qc, solved_history, notes = _solve(inp, sources, science.shape, base)
        qc.update(solved_qc)
        history += solved_history
        scale = pixel_scale_arcsec(base) if solved_qc else None
        if scale and "fwhm" in qc:  # the solution's scale, not the header's guess
            qc["fwhm_arcsec"] = qc["fwhm"] * scale
    product = Product(
        science,
        planes=(("VARIANCE", variance), ("MASK", mask)),
        cards={"BUNIT": (unit, "bias, dark and flat corrected")},
        base_header=base,
        history=tuple(history),
        notes=tuple(notes),
    )
    return product, qc, [], [raw_path]


MBIAS = Recipe("mbias", _bias, "Master bias: per-pixel sigma-clipped mean of the raw biases.")
MDARK = Recipe(
    "mdark", _dark, "Master dark (ADU/s): clipped mean of (raw - master bias) / exptime."
)
MFLAT = Recipe(
    "mflat",
    _flat,
    "Master flat: clipped mean of bias/dark-corrected, median-normalised flats; median 1.",
)
MBPM = Recipe(
    "mbpm",
    _mbpm,
    "Bad-pixel mask: ccdmask of the ratio of flats of two levels, plus the master dark's "
    "hot pixels (1: flats, 2: dark).",
    planes=("RATIO",),
)
REDUCE = Recipe(
    "reduce",
    _reduce,
    "Reduced science frame with variance and mask planes.",
    planes=("VARIANCE", "MASK"),
)


def run_recipe(inp: RecipeInput) -> RecipeResult:
    """Run one recipe on one SOF (skipping it when its product is up to date)."""
    start = time.perf_counter()
    result = _run_recipe(inp)
    return result.model_copy(update={"seconds": time.perf_counter() - start})


def _run_recipe(inp: RecipeInput) -> RecipeResult:
    db = Workspace.from_ref(inp.workspace).database()
    out = Path(inp.product_path)
    try:
        fingerprint = _fingerprint(inp)
    except OSError:
        fingerprint = ""
    statuses = catalog.status_rows(db, inp.session)
    previous = statuses.get(inp.product)
    if not inp.overwrite and previous is not None:
        status, message = previous.status, previous.message
        if status == "pass" and out.exists():
            try:
                made_from = read_header(out).get(HASH_KEY)
            except ProcessingError:
                made_from = None
            if made_from == fingerprint:  # up to date: only the verdict may change
                return _rejudge(db, inp, out, fingerprint) or _result(
                    inp,
                    out,
                    outcome="skipped",
                    status="pass",
                    substitutions=inp.substitutions,
                )
        if status == "fail" and not previous.claimed and previous.inputs == fingerprint:
            # made but failed its QC: judged again; failed in its recipe: still failed
            return _rejudge(db, inp, out, fingerprint) or _result(
                inp,
                out,
                outcome="skipped",
                status="fail",
                message=message or "",
                substitutions=inp.substitutions,
            )
    if catalog.claim_state(previous) == "interrupted":
        # a claim left by a process of this host that no longer runs (killed): take it over
        assert previous is not None
        catalog.set_status(
            db,
            inp.session,
            inp.product,
            "fail",
            f"interrupted: {previous.owner_host}:{previous.owner_pid} stopped while making it",
        )
    host, pid = socket.gethostname(), os.getpid()
    if not catalog.claim(
        db, inp.session, inp.product, fingerprint, host, pid, overwrite=inp.overwrite
    ):
        return _wait_for_other(db, inp, out, fingerprint)
    try:
        qc, dropped, notes = _make(inp, out, fingerprint)
    except (ProcessingError, CalibrationError) as exc:
        catalog.set_status(db, inp.session, inp.product, "fail", str(exc), inputs=fingerprint)
        raise
    except Exception as exc:
        # unexpected (a bug, the environment): recorded without the inputs they are about, so
        # the next run tries again instead of skipping it as a known failure
        catalog.set_status(db, inp.session, inp.product, "fail", f"{type(exc).__name__}: {exc}")
        raise
    return _judged(db, inp, out, qc, fingerprint, passed="made", dropped=dropped, notes=notes)


def _result(inp: RecipeInput, out: Path, **fields: Any) -> RecipeResult:
    """The result of ``inp``'s recipe, its product at ``out``."""
    return RecipeResult(product=inp.product, recipe=inp.recipe, path=str(out), **fields)


def _judge(
    db: Database, inp: RecipeInput, out: Path, qc: dict[str, float], fingerprint: str
) -> tuple[list[str], str]:
    """The verdict of QC values under the ranges in force: recorded (QC rows with their
    ranges and flags, the product's status, its header); returns (failures, status message)."""
    failures = qc_failures(qc, inp.qc_ranges)
    catalog.add_qc(
        db,
        [
            {
                "session": inp.session,
                "product": inp.product,
                "recipe": inp.recipe,
                "qc_name": k,
                "value": (v if math.isfinite(v) else None),
                "min": inp.qc_ranges.get(metric_name(k), (None, None))[0],
                "max": inp.qc_ranges.get(metric_name(k), (None, None))[1],
                "flag": not within(v, inp.qc_ranges.get(metric_name(k))),
                "unit": None,
                "comment": None,
            }
            for k, v in qc.items()
        ],
    )
    mark_qc_verdict(out, failures)
    if failures:
        message = f"QC failed: {'; '.join(failures)}"
        catalog.set_status(db, inp.session, inp.product, "fail", message, inputs=fingerprint)
    else:
        message = "ok"
        catalog.set_status(db, inp.session, inp.product, "pass", message, inputs=fingerprint)
    return failures, message


def _judged(
    db: Database,
    inp: RecipeInput,
    out: Path,
    qc: dict[str, float],
    fingerprint: str,
    *,
    passed: str,
    dropped: Sequence[str] = (),
    notes: Sequence[tuple[str, str]] = (),
) -> RecipeResult:
    """The result of :func:`_judge`: ``failed``, or ``passed`` (``made``, ``skipped``)."""
    failures, message = _judge(db, inp, out, qc, fingerprint)
    return _result(
        inp,
        out,
        outcome="failed" if failures else passed,
        status="fail" if failures else "pass",
        qc=qc,
        message=message if failures else "",
        dropped=tuple(dropped),
        notes=tuple(notes),
        substitutions=inp.substitutions,
    )


def _rejudge(db: Database, inp: RecipeInput, out: Path, fingerprint: str) -> RecipeResult | None:
    """An up-to-date product judged again from its stored QC values under the ranges in
    force now (no recomputation); None when it has none (it failed in its recipe)."""
    rows = [q for q in catalog.qc_rows(db, inp.session) if q.product == inp.product]
    if not rows or not out.exists():
        return None
    try:
        if read_header(out).get(HASH_KEY) != fingerprint:
            return None  # a file of other inputs: its values say nothing about these
    except ProcessingError:
        return None
    qc = {q.qc_name: (q.value if q.value is not None else math.nan) for q in rows}
    return _judged(db, inp, out, qc, fingerprint, passed="skipped")


def _wait_for_other(
    db: Database, inp: RecipeInput, out: Path, fingerprint: str, timeout_s: float = 3600.0
) -> RecipeResult:
    """Another run holds (or held) this product: wait for its outcome and report it."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = catalog.status_rows(db, inp.session).get(inp.product)
        status, message = (row.status, row.message) if row else ("fail", "")
        if row is None or not row.claimed:
            break
        if time.monotonic() > deadline:
            raise CalibrationError(
                f"{inp.product}: still being made by another run after "
                f"{timeout_s:.0f} s ({message})"
            )
        time.sleep(0.5)
    log.info("%s was made by another run (%s)", inp.product, status)
    return _result(
        inp,
        out,
        outcome="skipped",
        status=status,  # type: ignore[arg-type]
        message=message or "",
        substitutions=inp.substitutions,
    )


def _provenance(
    inp: RecipeInput, used: list[Path], fingerprint: str, qc: dict[str, float]
) -> tuple[dict, list[str]]:
    cards: dict = {
        "AF_RECIP": (inp.recipe, "astroflow recipe"),
        "AF_VERS": (astroflow_version(), "astroflow version"),
        "AF_PROD": (inp.product[:68], "product name"),
        "AF_NIN": (len(used), "number of input frames combined"),
        HASH_KEY: (fingerprint, "fingerprint of the inputs"),
    }
    for k, v in qc.items():
        cards[qc_keyword(k)] = (v if math.isfinite(v) else "nan", f"QC {k}")
    history = [f"input: {p.name}" for p in used]
    history += [f"calib {tag}: {Path(p).name}" for tag, p in inp.calibrations]
    history += [f"substituted: {s}" for s in inp.substitutions]
    return cards, history


def _write_product(
    inp: RecipeInput,
    out: Path,
    product: np.ndarray | Product,
    qc: dict[str, float],
    used: list[Path],
    fingerprint: str,
) -> None:
    """The product file: its pixels (and planes), provenance, QC keywords and history."""
    if not isinstance(product, Product):
        product = Product(product)
    cards, history = _provenance(inp, [Path(p) for p in used], fingerprint, qc)
    cards.update(product.cards)
    history = [*product.history, *history]
    write_product(
        out,
        product.data,
        cards,
        history,
        extensions=list(product.planes),
        base_header=product.base_header,
    )


def _make(
    inp: RecipeInput, out: Path, fingerprint: str
) -> tuple[dict[str, float], list[str], list[tuple[str, str]]]:
    """Make the product: the recipe once for a single-image frame; once per image extension
    for a multi-extension one (each extension calibrated with the same extension of the
    masters), written as one multi-extension file with the raw frame's extension names.
    Returns the QC values (per extension: ``median[SCI,2]``), the frames left out and the
    recipe's noncritical notes."""
    function = recipe_function(inp.recipe, inp.function)
    extensions = image_extensions(Path(inp.raw[0])) if inp.raw else None
    if extensions is None:
        product, qc, dropped, used = function(inp)
        _write_product(inp, out, product, qc, used, fingerprint)
        return qc, dropped, list(product.notes) if isinstance(product, Product) else []
    parts: list[ProductPart] = []
    all_qc: dict[str, float] = {}
    all_dropped: list[str] = []
    notes: list[tuple[str, str]] = []
    history: list[str] = []
    # the extensions are independent: two at a time (the kernels and most of the FITS I/O
    # release the GIL), in order; one at a time with cosmic rays (L.A.Cosmic holds ~10 copies
    # of an extension; two at a time measured no faster and 1.9x the memory, 2026-12-04)
    workers = 1 if inp.cosmic_rays is not None else min(2, len(extensions))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ext") as pool:
        made = list(
            pool.map(lambda e: function(inp.model_copy(update={"extension": e})), extensions)
        )
    for ext, (product, qc, dropped, _) in zip(extensions, made, strict=True):
        if not isinstance(product, Product):
            product = Product(product)
        label = f"{ext[0]},{ext[1]}"
        all_qc |= {f"{name}[{label}]": value for name, value in qc.items()}
        all_dropped += [d for d in dropped if d not in all_dropped]
        history += [f"[{label}] {line}" for line in product.history]
        notes += [(kind, f"[{label}] {message}") for kind, message in product.notes]
        cards = {
            qc_keyword(k): (v if math.isfinite(v) else "nan", f"QC {k}") for k, v in qc.items()
        }
        parts.append(
            ProductPart(
                ext, product.data, product.base_header, {**product.cards, **cards}, product.planes
            )
        )
    used: list[Path] = made[-1][3]  # the frames of the last extension (the same files)
    cards, provenance = _provenance(inp, [Path(p) for p in used], fingerprint, {})
    # a product of one frame (reduce) keeps its raw primary's cards; a master does not
    one_frame = any(part.header is not None for part in parts)
    primary = read_header(Path(inp.raw[0])) if one_frame else None
    write_mef_product(out, parts, cards, [*history, *provenance], primary)
    return all_qc, all_dropped, notes
