"""Image sources (plug-ins, one module per ``source_type``) and the pipeline config.

- :mod:`.config`: ``toasty-pipeline-config.yaml``;
- :mod:`.base`: :class:`FeedResult`, the :class:`ImageSource` base, id collisions;
- :mod:`.astropix`, :mod:`.djangoplicity`, :mod:`.folder`, :mod:`.workspace`: the sources;
- :mod:`.web`: one retried GET of a page or record;
- :mod:`.download`: copying a non-HTTP image into the work directory.
"""

from __future__ import annotations

from astroflow.models.errors import ConfigError
from astroflow.models.ingest import Candidate, PipelineConfig, Reject
from astroflow.storage.sources.astropix import AstroPixSource, astropix_candidate, query_astropix
from astroflow.storage.sources.base import SOURCES, FeedResult, ImageSource
from astroflow.storage.sources.config import read_pipeline_config
from astroflow.storage.sources.djangoplicity import DjangoplicitySource
from astroflow.storage.sources.download import download
from astroflow.storage.sources.folder import FolderSource, query_folder
from astroflow.storage.sources.workspace import WorkspaceSource, query_workspace

__all__ = [
    "SOURCES",
    "AstroPixSource",
    "DjangoplicitySource",
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
    "resolve_candidate",
]


def query_source(config: PipelineConfig) -> FeedResult:
    """Ask the configured source for its candidates; ids that two entries share are taken
    out and reported (:meth:`FeedResult.without_collisions`)."""
    return SOURCES[config.source_type].from_config(config).query().without_collisions()


def resolve_candidate(config: PipelineConfig, candidate: Candidate) -> Candidate | Reject:
    """The complete candidate, read from its source's record when it has a
    ``metadata_url`` (:meth:`ImageSource.resolve`), or a reject saying why it cannot be
    ingested."""
    if not candidate.metadata_url:
        return candidate
    source = SOURCES.get(candidate.source_type)
    section = getattr(config, candidate.source_type, None)
    if source is None or section is None:
        raise ConfigError(
            f"{candidate.source_id} came from a {candidate.source_type!r} source, which the "
            "repository's config no longer names"
        )
    return source(section).resolve(candidate)
