"""What ``astroflow demo`` writes besides its night: the synthetic raw frames and a preview
PNG of a reduced frame (Prefect-free)."""

from __future__ import annotations

from pathlib import Path

from astroflow.processing.render import RenderedRows, grey_to_rgba
from astroflow.processing.synthetic import night_frames
from astroflow.storage.organiser.frames import read_data, write_png, write_raw_frame


def make_demo_folders(root: Path, size: int) -> tuple[Path, Path]:
    """``root/workspace`` filled (once) with a synthetic two-night set of raw frames of
    ``size`` x ``size`` pixels, and the empty repository folder ``root/repository``."""
    workspace = root / "workspace"
    repository = root / "repository"
    if not workspace.exists():
        workspace.mkdir(parents=True)
        for frame in night_frames((size, size)):
            write_raw_frame(workspace / frame.name, frame.data, frame.header)
    repository.mkdir(parents=True, exist_ok=True)
    return workspace, repository


def write_preview(reduced: Path, target: Path) -> Path:
    """A PNG of a reduced frame, the right way up (FITS row 0 is the bottom)."""
    rgba = grey_to_rgba(RenderedRows(read_data(reduced)[::-1])[:, :])
    return write_png(rgba, target)
