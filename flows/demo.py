"""``astroflow demo``: synthesise a small night, run ``process-night`` on it, report."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from astroflow.flows.night import NightSummary, process_night
from astroflow.storage.organiser import catalog
from astroflow.storage.organiser.workspace import Workspace
from astroflow.tasks.demo_work import make_demo_folders, write_preview


class DemoReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    night: NightSummary
    products: tuple[tuple[str, str, str], ...]  # (product, status, message)
    qc: tuple[tuple[str, str, float | None, bool], ...]  # (product, qc, value, flagged)
    published: tuple[str, ...]
    root_index: str
    preview: str | None


def run_demo(directory: str = "astroflow-demo", size: int = 256) -> DemoReport:
    """Make (once) a synthetic two-night workspace in ``directory/workspace`` and run the
    night flow into the local repository ``directory/repository``."""
    root = Path(directory).expanduser().resolve()
    workspace, repository = make_demo_folders(root, size)
    night = process_night(
        str(workspace),
        str(repository),
        publish_url_prefix=f"{repository.as_uri()}/",
        folder_name="astroflow demo night",
    )
    ws = Workspace.open(workspace)
    db = ws.database()
    session = night.prepare.session
    statuses = catalog.status_rows(db, session)
    products = tuple(
        (name, catalog.shown_status(row), row.message or "")
        for name, row in sorted(statuses.items())
    )
    qc = tuple((q.product, q.qc_name, q.value, q.flag) for q in catalog.qc_rows(db, session))
    published = tuple(sorted(p.parent.name for p in repository.glob("*/index.wtml")))
    preview = None
    reduced = sorted((ws.session_dir(session) / "reduced").rglob("*_RED.fits"))
    if reduced:
        preview = str(write_preview(reduced[0], root / "preview.png"))
    return DemoReport(
        night=night,
        products=products,
        qc=qc,
        published=published,
        root_index=str(repository / "index.wtml"),
        preview=preview,
    )
