"""Plug-ins found through entry-point groups: one lookup for every kind.

astroflow's own plug-ins are registered in ``pyproject.toml`` exactly as another package's
would be, so nothing keeps a hand-written list of names: ``astroflow.sources`` (image sources
by ``source_type``), ``astroflow.repositories`` (repository backends by URL scheme) and
``astroflow.recipes`` (cascade recipes by name).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from astroflow.models.errors import ConfigError

__all__ = ["find_plugin", "plugin_names"]

_LOADED: dict[tuple[str, str, str], Any] = {}


def _entries(group: str, name: str) -> list[EntryPoint]:
    # one distribution may be visible twice on sys.path (an editable install and a build
    # folder): the same target counts once
    seen: dict[str, EntryPoint] = {}
    for entry in entry_points(group=group, name=name):
        seen.setdefault(entry.value, entry)
    return list(seen.values())


def find_plugin(group: str, name: str, what: str) -> Any:
    """The object registered as ``name`` in the entry-point ``group``.

    Parameters
    ----------
    what
        What the name is to the user (``source_type``, ``URL scheme``, ``recipe``), for the
        error message.

    Raises
    ------
    ConfigError
        When nothing registers ``name`` (naming what is registered), two packages register
        different objects under it, or its module cannot be imported.
    """
    entries = _entries(group, name)
    if not entries:
        known = ", ".join(plugin_names(group)) or "none"
        raise ConfigError(
            f"{what} {name!r} is not registered in the {group!r} entry-point group "
            f"(registered: {known})"
        )
    if len(entries) > 1:
        raise ConfigError(
            f"{what} {name!r} is registered twice in {group!r}: "
            + ", ".join(e.value for e in entries)
        )
    entry = entries[0]
    key = (group, name, entry.value)
    if key not in _LOADED:
        try:
            _LOADED[key] = entry.load()
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{what} {name!r}: cannot load {entry.value} ({exc})") from None
    return _LOADED[key]


def plugin_names(group: str) -> list[str]:
    """Every name registered in ``group``, sorted."""
    return sorted({e.name for e in entry_points(group=group)})
