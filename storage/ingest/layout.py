"""The files of one published image, in one place.

A published image is the folder ``<id>/`` of a repository (and, before it is published, the
folder ``out_todo/<id>/`` of the work folder) holding::

    index.wtml                 the WTML with absolute URLs: written last, its presence means
                               "published" (the marker)
    index_rel.wtml             the same with URLs relative to the folder
    astroflow-manifest.json    what was ingested (source, version, input hash, WCS source)
    thumb.jpg                  96x45 thumbnail
    L{level}X{x}Y{y}.png       tiles (``processing.tiling.Tile.name``), or for a FITS input
    {level}/{y}/{y}_{x}.fits   WWT's tiled FITS (``processing.fits_tiling.FitsTile.name``)
                               and preview.png, its top level rendered as 8-bit
    skip.flag                  instead of all the above: never fetch this id (holds the reason)

The repository's root holds ``index.wtml`` (every image, newest first) and
``toasty-pipeline-config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from astroflow.storage.keys import validate_id

__all__ = ["ImageLayout"]


@dataclass(frozen=True)
class ImageLayout:
    """The names of one image's files: :attr:`MARKER` and the others as file names inside
    its folder, and the properties as repository keys (``<id>/<name>``).

    Parameters
    ----------
    image_id
        The image's id (validated: a safe folder name).
    """

    MARKER: ClassVar[str] = "index.wtml"
    INDEX_REL: ClassVar[str] = "index_rel.wtml"
    MANIFEST: ClassVar[str] = "astroflow-manifest.json"
    THUMBNAIL: ClassVar[str] = "thumb.jpg"
    #: a FITS study's top level (256x256) rendered with the PNG tiles' stretch
    PREVIEW: ClassVar[str] = "preview.png"
    SKIP_FLAG: ClassVar[str] = "skip.flag"
    #: The root index of a repository (all images), at its top level.
    ROOT_INDEX: ClassVar[str] = "index.wtml"

    image_id: str

    def __post_init__(self) -> None:
        validate_id(self.image_id)

    def key(self, name: str) -> str:
        """The repository key of the file ``name`` of this image."""
        return f"{self.image_id}/{name}"

    @property
    def marker(self) -> str:
        return self.key(self.MARKER)

    @property
    def manifest(self) -> str:
        return self.key(self.MANIFEST)

    @property
    def skip_flag(self) -> str:
        return self.key(self.SKIP_FLAG)

    def url(self, prefix: str, name: str = MARKER) -> str:
        """Where the file ``name`` is served, under the repository's ``publish_url_prefix``
        (relative when there is none)."""
        return f"{prefix}{self.key(name)}"
