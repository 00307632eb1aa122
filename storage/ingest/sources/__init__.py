"""Image sources (plug-ins, one module per ``source_type``) and the pipeline config.

- :mod:`.config`: ``toasty-pipeline-config.yaml``;
- :mod:`.base`: :class:`FeedResult`, the :class:`ImageSource` base and its entry-point
  registry (``astroflow.sources``), id collisions;
- :mod:`.astropix`, :mod:`.djangoplicity`, :mod:`.folder`: sources (the ``workspace`` source,
  which reads an organiser workspace, is :mod:`astroflow.storage.workspace_source`);
- :mod:`.web`: one retried GET of a page or record;
- :mod:`.download`: copying a non-HTTP image into the work directory.
"""

from __future__ import annotations

from astroflow.models.errors import ConfigError
from astroflow.models.ingest import Candidate, PipelineConfig, Reject
from astroflow.storage.ingest.sources.base import (
    FeedResult,
    ImageSource,
    reads_local_files,
    source_class,
    source_types,
)
from astroflow.storage.ingest.sources.config import read_pipeline_config
from astroflow.storage.ingest.sources.download import download

__all__ = [
    "FeedResult",
    "ImageSource",
    "download",
    "query_source",
    "read_pipeline_config",
    "reads_local_files",
    "resolve_candidate",
    "source_class",
    "source_types",
]


def query_source(config: PipelineConfig) -> FeedResult:
    """Ask the configured source for its candidates; ids that two entries share are taken
    out and reported (:meth:`FeedResult.without_collisions`)."""
    return source_class(config.source_type).from_config(config).query().without_collisions()


def resolve_candidate(config: PipelineConfig, candidate: Candidate) -> Candidate | Reject:
    """The complete candidate, read from its source's record when it has a
    ``metadata_url`` (:meth:`ImageSource.resolve`), or a reject saying why it cannot be
    ingested."""
    if not candidate.metadata_url:
        return candidate
    if not config.section(candidate.source_type):
        raise ConfigError(
            f"{candidate.source_id} came from a {candidate.source_type!r} source, which the "
            "repository's config no longer names"
        )
    return source_class(candidate.source_type).from_config(config).resolve(candidate)
