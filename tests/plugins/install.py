"""Install the plug-ins of :mod:`tests.plugins` for one test: a dist-info with their entry
points on ``sys.path`` (what ``pip install`` of a package that declares them leaves)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENTRY_POINTS = """\
[astroflow.sources]
listing = tests.plugins.listing:ListingSource

[astroflow.repositories]
vault = tests.plugins.vault:VaultRepository

[astroflow.recipes]
skyflat = tests.plugins.recipes:SKYFLAT
"""


@contextmanager
def plugins_installed(folder: Path) -> Iterator[None]:
    info = folder / "astroflow_test_plugins-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: astroflow-test-plugins\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        importlib.invalidate_caches()
