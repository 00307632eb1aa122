"""A recipe defined outside astroflow, as a plug-in: a sky flat from the science frames.

Named in a rules YAML as ``function: tests.recipe_plugin:skyflat``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from astroflow.tasks.cascade_work import calibration, combine_set


def skyflat(inp: Any) -> tuple[np.ndarray, dict[str, float], list[str], list[Path]]:
    """Bias-subtracted science frames, each normalised to its median, combined (sigma-clipped
    mean), normalised to 1."""
    bias = calibration(inp, "MASTER_BIAS")

    def normalised(raw: np.ndarray, path: Path) -> np.ndarray:
        frame = raw.astype(np.float64) - bias
        return (frame / np.nanmedian(frame)).astype(np.float32)

    master, dropped, used = combine_set(inp, normalised)
    master = (master / np.nanmedian(master)).astype(np.float32)
    return master, {"median": float(np.nanmedian(master))}, dropped, used
