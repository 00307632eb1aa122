"""Image sources (plug-ins, one module per ``source_type``) and the pipeline config.

- :mod:`.config`: ``toasty-pipeline-config.yaml``;
- :mod:`.base`: :class:`FeedResult`, the :class:`ImageSource` base, id collisions;
- :mod:`.astropix`, :mod:`.folder`, :mod:`.workspace`: the sources;
- :mod:`.download`: copying a non-HTTP image into the work directory.
"""

from __future__ import annotations

from astroflow.models.ingest import PipelineConfig
from astroflow.storage.sources.astropix import AstroPixSource, astropix_candidate, query_astropix
from astroflow.storage.sources.base import SOURCES, FeedResult, ImageSource
from astroflow.storage.sources.config import read_pipeline_config
from astroflow.storage.sources.download import download
from astroflow.storage.sources.folder import FolderSource, query_folder
from astroflow.storage.sources.workspace import WorkspaceSource, query_workspace

__all__ = [
    "SOURCES",
    "AstroPixSource",
    "FeedResult",
    "FolderSource",
    "ImageSource",
    "WorkspaceSource",
    "astropix_candidate",
    "download",
    "query_astropix",
    "query_folder",
    "query_source",
    "query_workspace",
    "read_pipeline_config",
]


def query_source(config: PipelineConfig) -> FeedResult:
    """Ask the configured source for its candidates; ids that two entries share are taken
    out and reported (:meth:`FeedResult.without_collisions`)."""
    return SOURCES[config.source_type].from_config(config).query().without_collisions()
