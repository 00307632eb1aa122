"""astrometry.net's ``solve-field`` as a backend: sources in, a WCS and its matches out.

The solver is Debian's ``astrometry.net`` package (``solve-field``); its index files are in
the folders the setting ``ASTROFLOW_ASTROMETRY_INDEX_DIR`` names (``:``-separated; Debian's
``astrometry-data-*`` packages install to ``/usr/share/astrometry``). Each solve runs in a
temporary folder with a configuration that lists exactly those index files (so nothing else
in a folder is taken for one), on the given sources (an ``xylist``: a FITS table of 1-based
pixel positions and fluxes), within a CPU-time limit; the solution's WCS header and its
correspondences (``.corr``: each matched source with its index star) are read back.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astroflow.models.errors import AstrometryError
from astroflow.models.settings import Settings

log = logging.getLogger(__name__)

SETTING = "ASTROFLOW_ASTROMETRY_INDEX_DIR"
INDEX_PATTERNS = ("index*.fits", "index*.fits.fz", "*.index.fits")


@dataclass(frozen=True)
class SolveHint:
    """What the frame's header says (any part may be unknown).

    Attributes
    ----------
    ra, dec
        Approximate centre of the frame (degrees).
    radius
        Search radius around it (degrees).
    scale_low, scale_high
        Range of the pixel scale (arcsec per pixel).
    """

    ra: float | None = None
    dec: float | None = None
    radius: float = 2.0
    scale_low: float | None = None
    scale_high: float | None = None


@dataclass(frozen=True)
class SolverResult:
    """A solution.

    Attributes
    ----------
    header
        The solved WCS as astrometry.net writes it (TAN-SIP of the asked order; a pure TAN
        solution is written with order-1 SIP terms, which are zero).
    field_xy
        Matched sources: ``(n, 2)`` 0-based pixel positions.
    index_radec
        Their index stars: ``(n, 2)`` RA, Dec (degrees).
    index
        The index file that solved it (its name).
    seconds
        Wall time of the solve.
    """

    header: object
    field_xy: np.ndarray
    index_radec: np.ndarray
    index: str
    seconds: float


class AstrometryNet:
    """``solve-field`` over a set of index files.

    Parameters
    ----------
    index_files
        The index files to use.
    solve_field
        The program (path or name on ``PATH``).
    """

    def __init__(self, index_files: list[Path], solve_field: str) -> None:
        self.index_files = index_files
        self.solve_field = solve_field

    @classmethod
    def from_settings(cls) -> AstrometryNet:
        """The solver and the index files the setting names.

        Raises
        ------
        AstrometryError
            When ``solve-field`` is not installed, or the folders hold no index files (naming
            the setting and the folders).
        """
        program = shutil.which("solve-field")
        if program is None:
            raise AstrometryError(
                "astrometry.net's solve-field is not installed (Debian: apt-get install "
                "astrometry.net)"
            )
        folders = index_folders()
        files = index_files(folders)
        if not files:
            shown = ":".join(str(f) for f in folders) or "(empty)"
            raise AstrometryError(
                f"no astrometry.net index files in {shown} (setting {SETTING}; Debian: "
                "apt-get install astrometry-data-tycho2, or build-astrometry-index)"
            )
        return cls(files, program)

    def solve(
        self,
        sources: np.ndarray,
        width: int,
        height: int,
        hint: SolveHint,
        *,
        time_limit_s: float,
        sip_order: int,
        label: str,
    ) -> SolverResult | None:
        """Solve a frame from its sources (``(n, 3)``: 0-based x, y and flux, brightest
        first); None when it does not solve within the time limit.

        Raises
        ------
        AstrometryError
            When the solver cannot run or fails (naming ``label``).
        """
        from astropy.io import fits

        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="astroflow-solve-") as tmp:
            folder = Path(tmp)
            columns = [
                fits.Column("X", "E", array=np.asarray(sources[:, 0] + 1.0, np.float32)),
                fits.Column("Y", "E", array=np.asarray(sources[:, 1] + 1.0, np.float32)),
                fits.Column("FLUX", "E", array=np.asarray(sources[:, 2], np.float32)),
            ]
            fits.BinTableHDU.from_columns(columns).writeto(folder / "xy.fits")
            config = [f"cpulimit {time_limit_s:g}"]
            config += [f"index {path}" for path in self.index_files]
            (folder / "astrometry.cfg").write_text("\n".join(config) + "\n", encoding="utf-8")
            command = [
                self.solve_field,
                "--config",
                str(folder / "astrometry.cfg"),
                "--overwrite",
                "--no-plots",
                "--dir",
                str(folder),
                "--width",
                str(width),
                "--height",
                str(height),
                "--x-column",
                "X",
                "--y-column",
                "Y",
                "--sort-column",
                "FLUX",
                "--cpulimit",
                f"{time_limit_s:g}",
                "--tweak-order",
                str(max(1, sip_order)),
                "--new-fits",
                "none",
                "--rdls",
                "none",
                "--match",
                "none",
                "--index-xyls",
                "none",
                "--wcs",
                str(folder / "out.wcs"),
                "--corr",
                str(folder / "out.corr"),
                "--solved",
                str(folder / "out.solved"),
            ]
            if hint.ra is not None and hint.dec is not None:
                command += ["--ra", f"{hint.ra:.8f}", "--dec", f"{hint.dec:.8f}"]
                command += ["--radius", f"{hint.radius:g}"]
            if hint.scale_low is not None and hint.scale_high is not None:
                command += ["--scale-units", "arcsecperpix"]
                command += ["--scale-low", f"{hint.scale_low:.6g}"]
                command += ["--scale-high", f"{hint.scale_high:.6g}"]
            command.append(str(folder / "xy.fits"))
            try:
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    timeout=time_limit_s + 60,
                    cwd=folder,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                log.info("%s: solve-field ran past %g s", label, time_limit_s + 60)
                return None
            except OSError as exc:
                raise AstrometryError(f"{label}: cannot run solve-field: {exc}") from None
            if done.returncode != 0:
                tail = " ".join(done.stderr.strip().splitlines()[-3:])
                raise AstrometryError(f"{label}: solve-field failed ({tail})")
            if not (folder / "out.wcs").is_file():
                return None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the .wcs/.corr keywords and units
                header = fits.getheader(folder / "out.wcs")
                with fits.open(folder / "out.corr", memmap=False) as corr:
                    table = corr[1].data
                    field_xy = np.column_stack([table["field_x"], table["field_y"]]) - 1.0
                    index_radec = np.column_stack([table["index_ra"], table["index_dec"]])
            solved_by = next(
                (
                    line.split("solved with index", 1)[1].strip(" .")
                    for line in done.stdout.splitlines()
                    if "solved with index" in line
                ),
                "",
            )
        return SolverResult(
            header=header,
            field_xy=np.asarray(field_xy, np.float64),
            index_radec=np.asarray(index_radec, np.float64),
            index=solved_by,
            seconds=time.perf_counter() - start,
        )


def index_folders() -> list[Path]:
    """The folders the setting names (``:``-separated; empty: none)."""
    spec = Settings().astrometry_index_dir
    return [Path(part).expanduser() for part in spec.split(":") if part.strip()]


def index_files(folders: list[Path]) -> list[Path]:
    """The index files in ``folders`` (sorted, each once)."""
    found: set[Path] = set()
    for folder in folders:
        if folder.is_dir():
            for pattern in INDEX_PATTERNS:
                found.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(found)


def solver_available() -> bool:
    """Whether ``solve-field`` is installed and the setting's folders hold index files (what
    turns the ``solve`` step on by default)."""
    return shutil.which("solve-field") is not None and bool(index_files(index_folders()))
