"""Values of the ingest pipeline: configuration, candidates, manifests, placements, summaries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from astroflow.models.errors import ErrorStack

CONFIG_FILE = "toasty-pipeline-config.yaml"
MARKER = "index.wtml"
SKIP_FLAG = "skip.flag"
MANIFEST = "astroflow-manifest.json"


class AstroPixConfig(BaseModel):
    """The ``astropix`` section: where the AstroPix-style JSON feed lives."""

    model_config = ConfigDict(frozen=True, extra="allow")

    json_query_url: str


class FolderSourceConfig(BaseModel):
    """The ``folder`` section: a folder (any fsspec URL) of FITS and AVM-tagged images."""

    model_config = ConfigDict(frozen=True, extra="allow")

    path: str


class WorkspaceSourceConfig(BaseModel):
    """The ``workspace`` section: reduced science frames of an organiser workspace that passed
    QC (ids from product names, ``last_updated`` from the product files)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    path: str
    session: str | None = None


class PipelineConfig(BaseModel):
    """``toasty-pipeline-config.yaml`` at the repository root (toasty's keys; extra keys kept)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    source_type: Literal["astropix", "folder", "workspace"]
    publish_url_prefix: str
    folder_name: str
    folder_thumbnail_url: str = ""
    astropix: AstroPixConfig | None = None
    folder: FolderSourceConfig | None = None
    workspace: WorkspaceSourceConfig | None = None

    @field_validator("publish_url_prefix")
    @classmethod
    def _slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _section(self) -> PipelineConfig:
        if getattr(self, self.source_type) is None:
            raise ValueError(
                f"source_type is {self.source_type!r} but the {self.source_type!r} section "
                "is missing"
            )
        return self


class Candidate(BaseModel):
    """One image a source offers.

    Attributes
    ----------
    id
        The unique id: the image's folder name in the repository.
    source_type
        ``"astropix"`` or ``"folder"``.
    source_id
        The source's own identifier (AstroPix ``publisher_id/image_id``, or the file URL).
    last_updated
        When the source last changed the image (ISO 8601; naive means UTC).
    image_url
        Where to download the image from (http(s) URL or fsspec URL).
    image_ext
        The image's file extension, lower case, without the dot (``jpg``, ``fits``).
    title, credits, credits_url, description
        Metadata for the WTML.
    avm
        AVM-style ``wcs_*`` fields from the feed (AstroPix); ``None`` when the image file
        carries its own WCS.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    source_type: str
    source_id: str
    last_updated: str = ""
    image_url: str
    image_ext: str
    title: str = ""
    credits: str = ""
    credits_url: str = ""
    description: str = ""
    avm: dict[str, Any] | None = None


class Reject(BaseModel):
    """A candidate that cannot be ingested, and why."""

    model_config = ConfigDict(frozen=True)

    id: str
    source_id: str
    reason: str


class ImageManifest(BaseModel):
    """What was ingested for an image: written beside its tiles as ``astroflow-manifest.json``.

    A published image whose source ``last_updated`` or input hash differs from the candidate's
    is fetched and processed again.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    source_type: str
    source_id: str
    last_updated: str
    input_sha256: str
    input_bytes: int
    width: int
    height: int
    tile_levels: int
    tile_count: int
    processed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    astroflow_version: str = ""


class StudyPlacement(BaseModel):
    """Where a study sits on the sky, in WWT's terms (all angles in degrees).

    Computed from a top-down (positive CD determinant) TAN WCS exactly as
    ``wwt_data_formats.ImageSet.set_position_from_wcs`` does for tiled imagery.
    """

    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    tile_levels: int
    center_x: float  # CRVAL1, degrees
    center_y: float  # CRVAL2, degrees
    rotation_deg: float
    base_degrees_per_tile: float
    offset_x: float  # degrees
    offset_y: float  # degrees
    ra_hours: float  # true image centre
    dec_deg: float
    zoom_level: float


class StageSummary(BaseModel):
    """What one stage did: ids by outcome and the errors."""

    model_config = ConfigDict(frozen=True)

    stage: str
    new: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    done: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    errors: ErrorStack = ErrorStack()

    def line(self) -> str:
        """One line of counts for the CLI."""
        return (
            f"{self.stage}: new={len(self.new)} skipped={len(self.skipped)} "
            f"done={len(self.done)} failed={len(self.failed)} rejected={len(self.rejected)}"
        )


class ReviewDecision(BaseModel):
    """An operator's verdict on one processed image (``WORKDIR/review/<id>.json``)."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    decision: Literal["approved", "rejected"]
    reason: str = ""
    decided_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
