"""FITS/IRAF image sections (``BIASSEC``, ``TRIMSEC``, ``DATASEC``) as numpy slices.

A section ``'[x1:x2,y1:y2]'`` is 1-based and inclusive, x (NAXIS1, columns) first; spaces
occur (SAAO writes ``'[  17: 528,   1: 520]'``), ``x1 > x2`` reads the axis backwards, ``*`` is
the whole axis and ``-*`` the whole axis reversed. The slices are astropy's: 0-based
``image[rows, columns]``, as ``ccdproc.utils.slices.slice_from_string(fits_convention=True)``
gives them.
"""

from __future__ import annotations

import re

from astroflow.models.errors import ProcessingError

__all__ = ["parse_section", "section_origin"]

_AXIS = re.compile(r"^(?:(-?)\*|(\d+):(\d+))$")


def _axis(text: str, section: str) -> slice:
    match = _AXIS.match(text)
    if match is None:
        raise ProcessingError(f"image section {section!r}: {text!r} is not 'start:stop' or '*'")
    if match.group(2) is None:  # '*' or '-*'
        return slice(None, None, -1) if match.group(1) else slice(None)
    start, stop = int(match.group(2)), int(match.group(3))
    if start < 1 or stop < 1:
        raise ProcessingError(f"image section {section!r}: pixels count from 1")
    if start <= stop:
        return slice(start - 1, stop)
    return slice(start - 1, stop - 2 if stop > 1 else None, -1)


def parse_section(section: str) -> tuple[slice, slice]:
    """``(rows, columns)`` slices of a FITS section string.

    Raises
    ------
    ProcessingError
        For a string that is not a two-axis section, naming it.
    """
    text = re.sub(r"\s+", "", str(section))
    if not (text.startswith("[") and text.endswith("]")):
        raise ProcessingError(f"image section {section!r} is not in brackets: '[x1:x2,y1:y2]'")
    parts = text[1:-1].split(",")
    if len(parts) != 2:
        raise ProcessingError(f"image section {section!r} does not have two axes")
    columns, rows = (_axis(p, str(section)) for p in parts)
    return rows, columns


def section_origin(section: str) -> tuple[int, int]:
    """``(x0, y0)``: the 0-based column and row where a (forward) section starts; what a cut
    to it shifts pixel coordinates by."""
    rows, columns = parse_section(section)
    return columns.start or 0, rows.start or 0
