"""Review before publish (toasty's ``approve`` stage): the operator looks at every processed
image and approves or rejects it before anything reaches the repository.

With ``ingest-images(review=True)`` the run publishes a review artifact (each image: name,
thumbnail, size, position, tile count) and pauses (``pause_flow_run``) with a resume form in
the Prefect UI (:class:`ReviewInput`). Approved images are published; rejected ones get
``skip.flag`` in the repository with the reason and are never fetched again; undecided ones
wait for the next review. A review nobody answers in time publishes nothing. The command
line records the same decisions (``astroflow review|approve|reject``).
"""

from __future__ import annotations

import base64
from pathlib import Path

from prefect.input import RunInput
from pydantic import Field

from astroflow.flows import report
from astroflow.models.ingest import ImageManifest, ReviewDecision
from astroflow.storage.ingest.layout import ImageLayout
from astroflow.storage.ingest.workdir import WorkDir
from astroflow.storage.ingest.wtml import read_place


class ReviewInput(RunInput):
    """The resume form: which of the listed images to publish, which never to publish."""

    approve: list[str] = Field(
        default_factory=list, description="Ids of images to publish (see the review artifact)."
    )
    reject: list[str] = Field(
        default_factory=list,
        description="Ids of images never to publish: they get skip.flag with the reason.",
    )
    reasons: dict[str, str] = Field(
        default_factory=dict, description="Why, per rejected id (id: reason)."
    )


def _thumbnail(folder: Path) -> str:
    thumb = folder / ImageLayout.THUMBNAIL
    if not thumb.exists():
        return ""
    data = base64.b64encode(thumb.read_bytes()).decode("ascii")
    return f"![{folder.name}](data:image/jpeg;base64,{data})"


def image_rows(wd: WorkDir, ids: list[str]) -> list[tuple[str, ...]]:
    """``(id, name, thumbnail, size, position, tiles)`` of processed images."""
    rows = []
    for image_id in ids:
        folder = wd.path("out_todo", image_id)
        manifest = ImageManifest.model_validate_json((folder / ImageLayout.MANIFEST).read_text())
        place = read_place(image_id, (folder / ImageLayout.MARKER).read_bytes()).place
        rows.append(
            (
                image_id,
                place.name or image_id,
                _thumbnail(folder),
                f"{manifest.width}x{manifest.height}",
                f"RA {place.ra_hr * 15:.5f}, Dec {place.dec_deg:+.5f}",
                str(manifest.tile_count),
            )
        )
    return rows


def publish_review_artifact(wd: WorkDir, ids: list[str]) -> None:
    report.publish(
        "review",
        "Review before publish",
        f"{len(ids)} image(s) wait for review: approve or reject them in the resume form",
        [
            "### Images\n\n"
            + report.table(
                ["id", "name", "thumbnail", "size (px)", "position (deg)", "tiles"],
                image_rows(wd, ids),
            )
        ],
    )


def decisions_from(answer: ReviewInput, offered: list[str]) -> list[ReviewDecision]:
    """The form's answers about the ``offered`` images as decisions (recorded by the
    ``record-decisions`` task)."""
    out = []
    for image_id in answer.approve:
        if image_id in offered:
            out.append(ReviewDecision(image_id=image_id, decision="approved"))
    for image_id in answer.reject:
        if image_id in offered and image_id not in answer.approve:
            reason = answer.reasons.get(image_id, "") or "rejected in review"
            out.append(ReviewDecision(image_id=image_id, decision="rejected", reason=reason))
    return out
