"""The ``workspace`` source: reduced science frames of an organiser workspace that passed QC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from astroflow.models.errors import ConfigError, DownloadError, ErrorReport, InvalidKeyError
from astroflow.models.ingest import Candidate
from astroflow.storage.ingest.sources.base import FeedResult, ImageSource
from astroflow.storage.keys import safe_id


def query_workspace(path: str, session: str | None = None) -> FeedResult:
    """Reduced science frames of an organiser workspace whose status is ``pass``.

    Ids are the lower-cased product names; ``last_updated`` is the product file's modification
    time (so a re-reduced frame is published again).
    """
    from astroflow.storage.organiser import catalog
    from astroflow.storage.organiser.workspace import Workspace

    ws = Workspace.at(Path(path).expanduser().resolve())
    if not ws.has_database():
        raise DownloadError(f"workspace {ws.root} has no organiser database: run `astroflow prep`")
    try:
        session = ws.resolve_session(session)
    except ConfigError as exc:
        raise DownloadError(str(exc)) from None
    db = ws.database()
    statuses = catalog.statuses(db, session)
    _, products = catalog.load_plan(db)
    result = FeedResult()
    for product in products:
        if product.recipe != "reduce" or statuses.get(product.name) != "pass":
            continue
        file = ws.product_path(session, product.filepath)
        if not file.exists():
            continue
        try:
            uid = safe_id(product.name.lower())
        except InvalidKeyError as exc:
            result.errors.append(ErrorReport.from_exception(exc, "fetch", [product.name]))
            continue
        stamp = datetime.fromtimestamp(file.stat().st_mtime, UTC).isoformat(timespec="seconds")
        result.candidates.append(
            Candidate(
                id=uid,
                source_type="workspace",
                source_id=f"{session}/{product.name}",
                last_updated=stamp,
                image_url=str(file),
                image_ext="fits",
                title=product.name,
                description=f"{product.tag}, night {product.night}",
            )
        )
    return result


class WorkspaceSourceConfig(BaseModel):
    """The ``workspace`` section: reduced science frames of an organiser workspace that passed
    QC (ids from product names, ``last_updated`` from the product files)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    path: str
    session: str | None = None


class WorkspaceSource(ImageSource):
    """The workspace at the config's ``workspace.path`` (its ``session``, default current)."""

    source_type = "workspace"
    config_model = WorkspaceSourceConfig
    reads_local_files = True
    section: WorkspaceSourceConfig

    def query(self) -> FeedResult:
        return query_workspace(self.section.path, self.section.session)
