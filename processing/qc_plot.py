"""A night's image-quality trend as a small picture: FWHM and sky level of its reduced frames
against the time they were taken, for the night report (a trend is read faster than a
table).

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, safe in threads) and
returned as PNG bytes; nothing is written.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

#: Size of the picture (inches at :data:`DPI`): 640 x 360 pixels.
SIZE = (6.4, 3.6)
DPI = 100


@dataclass(frozen=True)
class TrendPoint:
    """One reduced frame of a night.

    Attributes
    ----------
    mjd
        Its mean time of observation (MJD, UTC).
    fwhm
        Median stellar FWHM (pixels), or None when too few stars were fitted.
    sky
        Median of its unmasked pixels (the frame's unit), or None.
    failed
        Whether it failed its QC (drawn in red).
    """

    mjd: float
    fwhm: float | None
    sky: float | None
    failed: bool = False


def night_trend_png(
    night: str,
    points: Sequence[TrendPoint],
    fwhm_range: tuple[float | None, float | None] = (None, None),
    sky_unit: str = "",
) -> bytes:
    """The trend picture of one night (PNG bytes): FWHM (top, its QC range dashed orange) and
    sky (bottom) against UT hours, frames that failed QC in red.

    Parameters
    ----------
    night
        The night's label (its title).
    points
        Its frames (any order).
    fwhm_range
        The ``fwhm`` QC range in force (pixels); a bound that is None is not drawn.
    sky_unit
        The sky's unit for the axis label (``electron``, ``adu``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ordered = sorted(points, key=lambda p: p.mjd)
    start = int(min((p.mjd for p in ordered), default=0.0))  # 0 h UT of the first frame's day

    def hours(p: TrendPoint) -> float:
        return (p.mjd - start) * 24.0

    fig = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for axis, field, label in (
        (top, "fwhm", "FWHM (px)"),
        (bottom, "sky", f"sky ({sky_unit})" if sky_unit else "sky"),
    ):
        for failed, colour in ((False, "#1f5fa8"), (True, "#c0392b")):
            chosen = [p for p in ordered if p.failed == failed and getattr(p, field) is not None]
            if chosen:
                axis.plot(
                    [hours(p) for p in chosen],
                    [getattr(p, field) for p in chosen],
                    "o" if not failed else "X",
                    color=colour,
                    markersize=5,
                    label="failed QC" if failed else "passed",
                )
        values = [(hours(p), getattr(p, field)) for p in ordered if getattr(p, field) is not None]
        if len(values) > 1:
            axis.plot(*zip(*values, strict=True), "-", color="#999999", linewidth=0.8, zorder=0)
        axis.set_ylabel(label)
        axis.grid(True, linewidth=0.3)
    for bound in fwhm_range:
        if bound is not None:
            top.axhline(bound, linestyle="--", color="#e69f00", linewidth=0.8)
    if any(p.failed for p in ordered):
        top.legend(loc="best", fontsize=7)
    bottom.set_xlabel(f"UT hours from MJD {start}")
    top.set_title(f"Night {night}: {len(ordered)} frame(s)", fontsize=10)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
