"""What a FITS file is called: the suffixes both rooms recognise, in one place."""

from __future__ import annotations

#: Suffixes of a FITS file (lower case).
FITS_SUFFIXES = (".fits", ".fit", ".fts")
#: Suffixes of a compressed one, after the FITS suffix (``.fits.gz``, ``.fits.Z``).
COMPRESSED_SUFFIXES = (".gz", ".z")


def is_fits_name(name: str) -> bool:
    """Whether a file name is a (visible) FITS file name."""
    return name.lower().endswith(FITS_SUFFIXES) and not name.startswith(".")


def compressed_fits_suffixes(
    compressions: tuple[str, ...] = COMPRESSED_SUFFIXES,
) -> tuple[str, ...]:
    """Every ``<fits suffix><compression>`` (``.fits.gz``, ``.fit.z``...), lower case."""
    return tuple(f + c for f in FITS_SUFFIXES for c in compressions)
