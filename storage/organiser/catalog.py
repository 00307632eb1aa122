"""Reading and writing the organiser's tables (rows in, rows out; short sessions)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from astroflow.models.errors import ConfigError
from astroflow.models.organiser import FrameInfo, ProductPlan, SetPlan, SofPlan
from astroflow.models.tables import (
    ProductFrame,
    ProductStatus,
    QualityControl,
    RawFrame,
    RawFrameSet,
    RejectedFrame,
    Session,
    SofMap,
)
from astroflow.storage.database import Database
from astroflow.storage.organiser.inventory import FileStat
from astroflow.storage.owners import process_gone

FRAME_FIELDS = (
    "kind",
    "instrument",
    "binning",
    "readout",
    "gain",
    "filter",
    "exptime",
    "mjd_obs",
    "night",
    "object",
    "rules",
)


def load_frames(db: Database) -> dict[str, tuple[FileStat, FrameInfo]]:
    """Every raw frame row by workspace-relative path."""
    table = RawFrame.__table__
    with db.connect() as conn:
        rows = conn.execute(sa.select(table)).mappings().all()
    out = {}
    for r in rows:
        info = FrameInfo(
            file=r["file"],
            **{k: r[k] or "" if k in ("object", "rules") else r[k] for k in FRAME_FIELDS},
        )
        out[r["filepath"]] = (FileStat(r["filepath"], r["size"], r["mtime_ns"]), info)
    return out


def frame_stats(db: Database) -> dict[str, tuple[int, int]]:
    """``filepath -> (size, mtime_ns)`` of every raw frame row (no model objects: fast)."""
    table = RawFrame.__table__
    with db.connect() as conn:
        rows = conn.execute(sa.select(table.c.filepath, table.c.size, table.c.mtime_ns)).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def plan_counts(db: Database) -> tuple[int, int, int]:
    """``(sets, incomplete sets, products)`` stored."""
    sets, prods = RawFrameSet.__table__, ProductFrame.__table__
    with db.connect() as conn:
        n_sets = conn.execute(sa.select(sa.func.count()).select_from(sets)).scalar() or 0
        n_bad = (
            conn.execute(
                sa.select(sa.func.count()).select_from(sets).where(sets.c.complete.is_(False))
            ).scalar()
            or 0
        )
        n_prod = conn.execute(sa.select(sa.func.count()).select_from(prods)).scalar() or 0
    return n_sets, n_bad, n_prod


def add_frames(db: Database, frames: Iterable[tuple[FileStat, FrameInfo]]) -> int:
    rows = [
        {
            "file": info.file,
            "filepath": st.path,
            "size": st.size,
            "mtime_ns": st.mtime_ns,
            **{k: getattr(info, k) for k in FRAME_FIELDS},
        }
        for st, info in frames
    ]
    if rows:
        with db.connect() as conn:
            conn.execute(sa.insert(RawFrame.__table__), rows)
    return len(rows)


def remove_frames(db: Database, paths: Iterable[str]) -> int:
    paths = list(paths)
    if not paths:
        return 0
    table = RawFrame.__table__
    with db.connect() as conn:
        for i in range(0, len(paths), 500):
            conn.execute(sa.delete(table).where(table.c.filepath.in_(paths[i : i + 500])))
    return len(paths)


def add_rejected(db: Database, items: Iterable[tuple[FileStat, str]]) -> int:
    rows = [
        {
            "file": st.path.rsplit("/", 1)[-1],
            "filepath": st.path,
            "size": st.size,
            "mtime_ns": st.mtime_ns,
            "reason": reason,
        }
        for st, reason in items
    ]
    if rows:
        with db.connect() as conn:
            conn.execute(sa.insert(RejectedFrame.__table__), rows)
    return len(rows)


def rejected(db: Database) -> list[tuple[str, str]]:
    with db.session() as s:
        return [(r.filepath, r.reason) for r in s.exec(select(RejectedFrame)).all()]


def clear_inventory(db: Database) -> None:
    """Forget frames, rejects, sets, products and SOF maps (``prep --refresh``)."""
    with db.connect() as conn:
        for table in (RawFrame, RejectedFrame, RawFrameSet, ProductFrame, SofMap):
            conn.execute(sa.delete(table.__table__))


def _set_row(s: SetPlan) -> dict:
    return {
        "name": s.name,
        "recipe": s.recipe,
        "recipe_order": s.recipe_order,
        "night": s.night,
        "keys": json.dumps(dict(s.keys), sort_keys=True),
        "frames": json.dumps(list(s.frames)),
        "count": len(s.frames),
        "mjd": s.mjd,
        "exptime": s.exptime,
        "complete": s.complete,
        "reason": s.reason or None,
    }


def _product_row(p: ProductPlan) -> dict:
    return {
        "name": p.name,
        "set_name": p.set_name,
        "recipe": p.recipe,
        "recipe_order": p.recipe_order,
        "tag": p.tag,
        "filepath": p.filepath,
        "night": p.night,
        "mjd": p.mjd,
        "exptime": p.exptime,
        "keys": json.dumps(dict(p.keys), sort_keys=True),
        "complete": p.complete,
    }


def _rows(conn: sa.Connection, table: sa.Table, columns: Iterable[str]) -> list[tuple]:
    cols = [table.c[c] for c in columns]
    return sorted(tuple(r) for r in conn.execute(sa.select(*cols)).all())


def replace_plan(db: Database, sets: list[SetPlan], products: list[ProductPlan]) -> bool:
    """Store the predicted sets and products; writes nothing when they are unchanged.

    Returns True when the tables changed.
    """
    set_rows = [_set_row(s) for s in sets]
    product_rows = [_product_row(p) for p in products]
    set_cols = list(set_rows[0]) if set_rows else list(_set_row.__annotations__)
    with db.connect() as conn:
        if set_rows:
            same = _rows(conn, RawFrameSet.__table__, set_cols) == sorted(
                tuple(r[c] for c in set_cols) for r in set_rows
            )
            pcols = list(product_rows[0])
            same = same and _rows(conn, ProductFrame.__table__, pcols) == sorted(
                tuple(r[c] for c in pcols) for r in product_rows
            )
        else:
            same = not conn.execute(
                sa.select(sa.func.count()).select_from(RawFrameSet.__table__)
            ).scalar()
        if same:
            return False
        conn.execute(sa.delete(RawFrameSet.__table__))
        conn.execute(sa.delete(ProductFrame.__table__))
        if set_rows:
            conn.execute(sa.insert(RawFrameSet.__table__), set_rows)
            conn.execute(sa.insert(ProductFrame.__table__), product_rows)
    return True


def load_plan(db: Database) -> tuple[list[SetPlan], list[ProductPlan]]:
    with db.connect() as conn:
        srows = conn.execute(sa.select(RawFrameSet.__table__)).mappings().all()
        prows = conn.execute(sa.select(ProductFrame.__table__)).mappings().all()
    sets = [
        SetPlan(
            name=r["name"],
            recipe=r["recipe"],
            recipe_order=r["recipe_order"],
            night=r["night"],
            keys=tuple(sorted(json.loads(r["keys"]).items())),
            frames=tuple(json.loads(r["frames"])),
            mjd=r["mjd"],
            exptime=r["exptime"],
            complete=r["complete"],
            reason=r["reason"] or "",
        )
        for r in srows
    ]
    products = [
        ProductPlan(
            name=r["name"],
            set_name=r["set_name"],
            recipe=r["recipe"],
            recipe_order=r["recipe_order"],
            tag=r["tag"],
            filepath=r["filepath"],
            night=r["night"],
            mjd=r["mjd"],
            exptime=r["exptime"],
            keys=tuple(sorted(json.loads(r["keys"]).items())),
            complete=r["complete"],
        )
        for r in prows
    ]
    return sorted(sets, key=lambda s: (s.recipe_order, s.name)), sorted(
        products, key=lambda p: (p.recipe_order, p.name)
    )


def replace_sofs(db: Database, session: str, sofs: list[SofPlan]) -> bool:
    """Store a session's SOF map; writes nothing when it is unchanged."""
    rows = [
        {
            "session": session,
            "sof": sof.set_name,
            "recipe": sof.recipe,
            "recipe_order": sof.recipe_order,
            "file": line.path,
            "tag": line.tag,
            "complete": sof.complete,
            "reason": sof.reason or None,
        }
        for sof in sofs
        for line in sof.lines
    ]
    table = SofMap.__table__
    cols = ["session", "sof", "recipe", "recipe_order", "file", "tag", "complete", "reason"]
    with db.connect() as conn:
        existing = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(*[table.c[c] for c in cols]).where(table.c.session == session)
            ).all()
        )
        if existing == sorted(tuple(r[c] for c in cols) for r in rows):
            return False
        conn.execute(sa.delete(table).where(table.c.session == session))
        if rows:
            conn.execute(sa.insert(table), rows)
    return True


# -- sessions -------------------------------------------------------------------------------


def sessions(db: Database) -> list[Session]:
    with db.session() as s:
        return list(s.exec(select(Session).order_by(Session.name)).all())


def create_session(
    db: Database, name: str, rules: str = "generic-ccd", make_current: bool = True
) -> Session:
    with db.session() as s:
        if s.exec(select(Session).where(Session.name == name)).first():
            raise ConfigError(f"session {name!r} already exists")
        if make_current:
            s.exec(sa.update(Session).values(current=False))
        row = Session(name=name, current=make_current, rules=rules)
        s.add(row)
    return row


def current_session(db: Database) -> Session | None:
    with db.session() as s:
        return s.exec(select(Session).where(Session.current == sa.true())).first()


def switch_session(db: Database, name: str) -> None:
    with db.session() as s:
        if not s.exec(select(Session).where(Session.name == name)).first():
            raise ConfigError(f"no session {name!r}")
        s.exec(sa.update(Session).values(current=False))
        s.exec(sa.update(Session).where(Session.name == name).values(current=True))


# -- statuses and QC --------------------------------------------------------------------------


def statuses(db: Database, session: str) -> dict[str, str]:
    with db.session() as s:
        rows = s.exec(select(ProductStatus).where(ProductStatus.session == session)).all()
        return {r.product: r.status for r in rows}


@dataclass(frozen=True)
class StatusRow:
    """A product's status in a session, with the inputs it is about and any claim on it.

    Attributes
    ----------
    status
        ``pass`` or ``fail`` (a claim is stored as ``fail``: a crash never reads as a pass).
    message
        Why, in words (``QC failed: ...``, the recipe's error).
    inputs
        The fingerprint of the inputs the status is about.
    owner_host, owner_pid, claimed_at
        The run making the product now (all None when nobody is).
    """

    status: str
    message: str | None = None
    inputs: str | None = None
    owner_host: str | None = None
    owner_pid: int | None = None
    claimed_at: datetime | None = None

    @property
    def claimed(self) -> bool:
        return self.owner_host is not None


def status_rows(db: Database, session: str) -> dict[str, StatusRow]:
    """``product -> StatusRow`` for a session."""
    with db.session() as s:
        rows = s.exec(select(ProductStatus).where(ProductStatus.session == session)).all()
        return {
            r.product: StatusRow(
                r.status, r.message, r.inputs, r.owner_host, r.owner_pid, r.claimed_at
            )
            for r in rows
        }


_NO_CLAIM = {"owner_host": None, "owner_pid": None, "claimed_at": None}


def set_status(
    db: Database,
    session: str,
    product: str,
    status: str,
    message: str | None = None,
    *,
    inputs: str | None = None,
) -> None:
    """Record a product's status in a session (about the inputs ``inputs``); ends any claim."""
    table = ProductStatus.__table__
    values = {"status": status, "message": message, "inputs": inputs, **_NO_CLAIM}
    with db.connect() as conn:
        updated = conn.execute(
            sa.update(table)
            .where(table.c.session == session, table.c.product == product)
            .values(**values, updated_at=sa.func.now())
        ).rowcount
        if not updated:
            conn.execute(sa.insert(table).values(session=session, product=product, **values))


def claim(
    db: Database,
    session: str,
    product: str,
    fingerprint: str,
    host: str,
    pid: int,
    *,
    overwrite: bool = False,
    stale_after_s: float = 6 * 3600,
) -> bool:
    """Atomically take the right to make ``product`` in ``session``.

    Writes status ``fail`` (so a crash leaves a failure, never a false pass) with the lease in
    its columns (``owner_host``, ``owner_pid``, ``claimed_at``) and the inputs' fingerprint.
    Refused while another run holds a fresh claim, and, unless ``overwrite``, when the product
    already passed with the same inputs. Safe across processes on SQLite and PostgreSQL (one
    row per session and product; the claim is a conditional update).
    """
    table = ProductStatus.__table__
    lease = {
        "status": "fail",
        "message": "being made",
        "inputs": fingerprint,
        "owner_host": host,
        "owner_pid": pid,
        "claimed_at": sa.func.now(),
    }
    try:
        with db.connect() as conn:
            conn.execute(sa.insert(table).values(session=session, product=product, **lease))
        return True
    except sa.exc.IntegrityError:
        pass
    # the stale limit is computed by the database itself (no client/server clock or zone mix)
    if db.engine.dialect.name == "postgresql":
        limit = sa.func.now() - sa.text(f"interval '{int(stale_after_s)} seconds'")
    else:
        limit = sa.func.datetime("now", f"-{int(stale_after_s)} seconds")
    free = sa.or_(table.c.owner_host.is_(None), table.c.claimed_at < limit)
    if not overwrite:
        free = sa.and_(
            free, sa.not_(sa.and_(table.c.status == "pass", table.c.inputs == fingerprint))
        )
    with db.connect() as conn:
        updated = conn.execute(
            sa.update(table)
            .where(table.c.session == session, table.c.product == product, free)
            .values(**lease, updated_at=sa.func.now())
        ).rowcount
    return bool(updated)


def claim_state(row: StatusRow | None) -> str | None:
    """For a claimed product: ``"interrupted"`` when its owner is a process of this host that
    is gone (killed mid-product: not a failure of the product), else ``"running"``; None when
    nobody claims it."""
    if row is None or not row.claimed:
        return None
    assert row.owner_host is not None
    return "interrupted" if process_gone(row.owner_host, row.owner_pid or "") else "running"


def shown_status(row: StatusRow) -> str:
    """The status a person should read: a claim shows as ``running`` or ``interrupted``
    instead of the ``fail`` it is stored as."""
    return claim_state(row) or row.status


def add_qc(db: Database, rows: list[dict]) -> None:
    if rows:
        with db.connect() as conn:
            table = QualityControl.__table__
            conn.execute(
                sa.delete(table).where(
                    table.c.session == rows[0]["session"], table.c.product == rows[0]["product"]
                )
            )
            conn.execute(sa.insert(table), rows)


def qc_rows(db: Database, session: str) -> list[QualityControl]:
    with db.session() as s:
        return list(
            s.exec(
                select(QualityControl)
                .where(QualityControl.session == session)
                .order_by(QualityControl.product, QualityControl.qc_name)
            ).all()
        )


def sof_rows(db: Database, session: str) -> list[SofMap]:
    with db.session() as s:
        return list(
            s.exec(
                select(SofMap)
                .where(SofMap.session == session)
                .order_by(SofMap.recipe_order, SofMap.sof, SofMap.file)
            ).all()
        )
