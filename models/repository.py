"""Values describing repositories and what was done to them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PutTreeResult(BaseModel):
    """What :meth:`storage.Repository.put_tree` uploaded.

    Attributes
    ----------
    dest
        Repository key of the destination folder.
    files
        Number of files uploaded, the marker included.
    bytes
        Total bytes uploaded.
    pruned
        Number of stale remote files removed from ``dest`` (not in the new tree).
    """

    model_config = ConfigDict(frozen=True)

    dest: str
    files: int
    bytes: int
    pruned: int = 0


class RepositoryCheck(BaseModel):
    """Result of ``astroflow repo check``: can we reach the repository and write to it?"""

    model_config = ConfigDict(frozen=True)

    url: str
    backend: str
    reachable: bool
    writable: bool
    entries: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and self.writable
