"""Values of the ingest pipeline: configuration, candidates, manifests, placements, summaries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from astroflow.models.errors import ErrorStack

CONFIG_FILE = "toasty-pipeline-config.yaml"


def parse_timestamp(text: object) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; naive means UTC) as an aware datetime, or None
    when it is empty or not one."""
    try:
        stamp = datetime.fromisoformat(str(text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


class PipelineConfig(BaseModel):
    """``toasty-pipeline-config.yaml`` at the repository root (toasty's keys; extra keys kept).

    The section named by ``source_type`` belongs to that source plug-in, which validates it
    with its own ``config_model`` (:mod:`astroflow.storage.ingest.sources`).
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    source_type: str
    publish_url_prefix: str
    folder_name: str
    folder_thumbnail_url: str = ""
    #: FITS inputs become WWT's tiled FITS (``fits``: float tiles, the viewer stretches
    #: them) or 8-bit PNG tiles of a fixed 0.5-99.5 % stretch (``png``: for clients without
    #: FITS support)
    fits_tiles: Literal["fits", "png"] = "fits"

    @field_validator("publish_url_prefix")
    @classmethod
    def _slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _section(self) -> PipelineConfig:
        if not isinstance((self.model_extra or {}).get(self.source_type), dict):
            raise ValueError(
                f"source_type is {self.source_type!r} but the {self.source_type!r} section "
                "is missing (or is not a mapping)"
            )
        return self

    def section(self, source_type: str) -> dict[str, Any]:
        """The raw config section named ``source_type`` (empty when there is none); the
        source plug-in of that name validates it with its own config model."""
        value = (self.model_extra or {}).get(source_type)
        return value if isinstance(value, dict) else {}


class Candidate(BaseModel):
    """One image a source offers.

    Attributes
    ----------
    id
        The unique id: the image's folder name in the repository.
    source_type
        The config's ``source_type`` that offered it (``"astropix"``, ``"folder"``...).
    source_id
        The source's own identifier (AstroPix ``publisher_id/image_id``, Djangoplicity id,
        or the file URL).
    last_updated
        When the source last changed the image (ISO 8601; naive means UTC); empty when the
        source does not say (a published image is then done).
    image_url
        Where to download the image from (http(s) URL or fsspec URL); empty until the
        candidate is resolved (see ``metadata_url``).
    image_ext
        The image's file extension, lower case, without the dot (``jpg``, ``fits``).
    title, credits, credits_url, description
        Metadata for the WTML.
    description_on_place
        Write the description on the Place rather than on the ImageSet (toasty does so for
        Djangoplicity images).
    annotation
        The Place's ``Annotation`` attribute (Djangoplicity: JSON of channel, item id and
        publication date).
    avm
        AVM-style ``wcs_*`` fields from the feed (AstroPix, Djangoplicity); ``None`` when the
        image file carries its own WCS.
    metadata_url
        Where the full record is read when the image is fetched (Djangoplicity's
        ``{id}/api/json/``); empty for candidates complete from the query.
    wcs_url
        A WCS sidecar (a FITS header for the image's pixel grid) that places the image,
        winning over AVM tags in the file; empty when there is none.
    insecure_tls
        Download without verifying TLS certificates (``force_insecure_tls``).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    source_type: str
    source_id: str
    last_updated: str = ""
    image_url: str = ""
    image_ext: str = ""
    title: str = ""
    credits: str = ""
    credits_url: str = ""
    description: str = ""
    description_on_place: bool = False
    annotation: str = ""
    avm: dict[str, Any] | None = None
    metadata_url: str = ""
    wcs_url: str = ""
    insecure_tls: bool = False


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

    Attributes
    ----------
    wcs_source
        What placed the image: ``feed`` (the source's AVM-like fields), ``fits-header``,
        ``astrometry`` (a reduced frame's astrometric solution), ``avm`` (tags in the
        picture) or ``sidecar`` (a WCS sidecar file).
    wcs_note
        What the reader of the placement should know (a sidecar that won over the image's
        own AVM tags or FITS WCS).
    ignored_avm
        AVM tags of the picture that could not be read and were left out
        (``"Spatial.Notes: <why>"``); each is also a noncritical error report of the run.
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
    wcs_source: str = ""
    wcs_note: str = ""
    ignored_avm: tuple[str, ...] = ()
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


class StretchHints(BaseModel):
    """What the WTML tells WWT of a tiled-FITS study's values (``DataMin``, ``DataMax``,
    ``PixelCutLow``, ``PixelCutHigh``; the image's unit): the range of its data and the cut
    the web client's stretch starts from (the viewer can change it)."""

    model_config = ConfigDict(frozen=True)

    data_min: float | None
    data_max: float | None
    cut_low: float
    cut_high: float


class StageSummary(BaseModel):
    """What one stage did: ids by outcome and the errors."""

    model_config = ConfigDict(frozen=True)

    stage: str
    new: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    done: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    reject_reasons: dict[str, str] = Field(default_factory=dict)  # id -> why the source's
    # entry cannot be ingested (no TAN WCS, no original image...)
    errors: ErrorStack = ErrorStack()

    def counts(self) -> dict[str, int]:
        """The stage's counts (the payload of its events)."""
        return {
            "new": len(self.new),
            "skipped": len(self.skipped),
            "done": len(self.done),
            "failed": len(self.failed),
            "rejected": len(self.rejected),
        }

    def failures(self) -> dict[str, str]:
        """Every failed input with its reason (the critical error reports)."""
        return {
            ", ".join(r.inputs) or self.stage: f"{r.error_type}: {r.message}"
            for r in self.errors.critical
        }

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
