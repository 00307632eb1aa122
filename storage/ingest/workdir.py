"""The ingest work directory: ``cache_todo``, ``cache_done``, ``out_todo``, ``out_done``.

Every move between stages is a rename within one filesystem, and every stage writes into a
``<name>.partial`` folder first, so a crash at any point leaves either the old state or the new
one, never a torn folder. Leftover ``.partial`` folders are removed and redone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from astroflow.models.ingest import Candidate, Reject, ReviewDecision
from astroflow.storage.files import move_replacing, write_json_atomic
from astroflow.storage.keys import validate_id

STAGES = ("cache_todo", "cache_done", "out_todo", "out_done", "out_rejected")
CANDIDATE_FILE = "candidate.json"
ERROR_FILE = "error.txt"
REJECTS_FILE = "rejects.json"
REVIEW_DIR = "review"  # <id>.json decisions; the folder's existence means "review is on"


class WorkDir:
    """Paths and atomic transitions of one work directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def ensure(self) -> WorkDir:
        for stage in STAGES:
            (self.root / stage).mkdir(parents=True, exist_ok=True)
        return self

    def path(self, stage: str, image_id: str) -> Path:
        return self.root / stage / validate_id(image_id)

    def partial(self, stage: str, image_id: str) -> Path:
        return self.root / stage / f"{validate_id(image_id)}.partial"

    def ids(self, stage: str) -> list[str]:
        """Complete entries of a stage (no ``.partial``), sorted."""
        folder = self.root / stage
        if not folder.is_dir():
            return []
        return sorted(
            p.name for p in folder.iterdir() if p.is_dir() and not p.name.endswith(".partial")
        )

    def clean_partials(self, stage: str) -> list[str]:
        """Remove leftovers of a crash in ``stage``; returns their ids."""
        folder = self.root / stage
        gone = []
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.endswith(".partial"):
                    shutil.rmtree(p, ignore_errors=True)
                    gone.append(p.name[: -len(".partial")])
        return sorted(gone)

    def commit(self, stage: str, image_id: str) -> Path:
        """Rename ``stage/<id>.partial`` to ``stage/<id>`` (replacing an old one)."""
        dest = self.path(stage, image_id)
        move_replacing(self.partial(stage, image_id), dest)
        return dest

    def move(self, src_stage: str, dest_stage: str, image_id: str) -> Path:
        """Move ``src_stage/<id>`` to ``dest_stage/<id>`` (replacing an old one)."""
        dest = self.path(dest_stage, image_id)
        move_replacing(self.path(src_stage, image_id), dest)
        return dest

    def candidate(self, stage: str, image_id: str) -> Candidate:
        text = (self.path(stage, image_id) / CANDIDATE_FILE).read_text(encoding="utf-8")
        return Candidate.model_validate_json(text)

    def record_error(self, stage: str, image_id: str, message: str) -> None:
        folder = self.path(stage, image_id)
        if folder.is_dir():
            (folder / ERROR_FILE).write_text(message + "\n", encoding="utf-8")

    def rejects(self) -> dict[str, Reject]:
        path = self.root / REJECTS_FILE
        if not path.exists():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return {k: Reject.model_validate(v) for k, v in data.items()}

    def save_rejects(self, rejects: dict[str, Reject]) -> None:
        write_json_atomic(
            self.root / REJECTS_FILE, {k: v.model_dump() for k, v in sorted(rejects.items())}
        )

    # -- review before publish ------------------------------------------------------------

    def enable_review(self) -> None:
        """Mark this work directory as reviewed: ``publish`` then takes approved images only."""
        (self.root / REVIEW_DIR).mkdir(parents=True, exist_ok=True)

    @property
    def review_enabled(self) -> bool:
        return (self.root / REVIEW_DIR).is_dir()

    def decide(self, decision: ReviewDecision) -> None:
        """Record a verdict (the image must be processed and waiting in ``out_todo``)."""
        if not self.path("out_todo", decision.image_id).is_dir():
            from astroflow.models.errors import ConfigError

            raise ConfigError(f"{decision.image_id!r} is not processed and waiting for review")
        self.enable_review()
        write_json_atomic(
            self.root / REVIEW_DIR / f"{validate_id(decision.image_id)}.json",
            decision.model_dump(mode="json"),
        )

    def decisions(self) -> dict[str, ReviewDecision]:
        """The recorded verdicts of the images still waiting in ``out_todo``."""
        folder = self.root / REVIEW_DIR
        out: dict[str, ReviewDecision] = {}
        for image_id in self.ids("out_todo"):
            path = folder / f"{image_id}.json"
            if path.exists():
                out[image_id] = ReviewDecision.model_validate_json(path.read_text("utf-8"))
        return out

    def forget_decision(self, image_id: str) -> None:
        (self.root / REVIEW_DIR / f"{validate_id(image_id)}.json").unlink(missing_ok=True)
