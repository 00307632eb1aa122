"""The ``listing`` source: a text file naming local FITS files, one per line."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from astroflow.models.ingest import Candidate
from astroflow.storage.ingest.sources import FeedResult, ImageSource


class ListingConfig(BaseModel):
    """The ``listing`` section: where the list is."""

    model_config = ConfigDict(frozen=True)

    list_file: str


class ListingSource(ImageSource):
    """Every file the list names, its id the file's stem."""

    source_type = "listing"
    config_model = ListingConfig
    reads_local_files = True
    section: ListingConfig

    def query(self) -> FeedResult:
        result = FeedResult()
        for line in Path(self.section.list_file).read_text().splitlines():
            path = Path(line.strip())
            if not line.strip():
                continue
            result.candidates.append(
                Candidate(
                    id=path.stem.lower(),
                    source_type=self.source_type,
                    source_id=str(path),
                    last_updated="2026-12-01T00:00:00",
                    image_url=str(path),
                    image_ext="fits",
                    title=path.stem,
                )
            )
        return result
