"""SQLModel tables of the organiser and the cascade.

Conventions: primary key ``_id`` (a UUID the database makes: ``server_default``), every other
default is a ``server_default``, nullable columns default to null, no ORM relationships (rows
refer to each other by natural keys such as the set name), and tables never save themselves.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Field, SQLModel


class new_uuid(FunctionElement):  # noqa: N801 - SQL function naming
    """A server-side random UUID: ``gen_random_uuid()`` on PostgreSQL, random hex on SQLite
    (the 32-character form SQLAlchemy's ``Uuid`` type stores there)."""

    type = sa.Uuid()
    inherit_cache = True


@compiles(new_uuid, "postgresql")
def _pg_uuid(element: new_uuid, compiler: object, **kw: object) -> str:
    return "gen_random_uuid()"


@compiles(new_uuid)
def _default_uuid(element: new_uuid, compiler: object, **kw: object) -> str:
    return "(lower(hex(randomblob(16))))"


def _pk() -> object:
    return Field(
        default=None,
        sa_column=sa.Column("_id", sa.Uuid(), primary_key=True, server_default=new_uuid()),
    )


def _now_col(name: str) -> object:
    return Field(
        default=None,
        sa_column=sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


class RawFrame(SQLModel, table=True):
    """One raw frame in ``raw/<night>/``."""

    __tablename__ = "raw_frames"
    __table_args__ = (sa.UniqueConstraint("filepath", name="uq_raw_frames_filepath"),)

    id: uuid.UUID | None = _pk()
    file: str
    filepath: str  # workspace-relative
    size: int
    mtime_ns: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    kind: str
    instrument: str = Field(sa_column=sa.Column(sa.String(), nullable=False, server_default=""))
    binning: str = Field(sa_column=sa.Column(sa.String(), nullable=False, server_default="1x1"))
    readout: str = Field(sa_column=sa.Column(sa.String(), nullable=False, server_default=""))
    gain: str = Field(sa_column=sa.Column(sa.String(), nullable=False, server_default=""))
    filter: str = Field(sa_column=sa.Column(sa.String(), nullable=False, server_default=""))
    exptime: float
    mjd_obs: float
    night: str = Field(index=True)
    object: str | None = None
    rules: str = Field(sa_column=sa.Column(sa.String(), nullable=False, server_default=""))
    ignore: bool = Field(
        sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    created_at: datetime | None = _now_col("created_at")


class RejectedFrame(SQLModel, table=True):
    """A file that is not a usable raw frame, moved to ``misc/``, and why."""

    __tablename__ = "rejected_frames"
    __table_args__ = (sa.UniqueConstraint("filepath", name="uq_rejected_frames_filepath"),)

    id: uuid.UUID | None = _pk()
    file: str
    filepath: str
    size: int
    mtime_ns: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    reason: str
    created_at: datetime | None = _now_col("created_at")


class RawFrameSet(SQLModel, table=True):
    """A predicted recipe input set."""

    __tablename__ = "raw_frame_sets"

    id: uuid.UUID | None = _pk()
    name: str = Field(sa_column=sa.Column(sa.String(), nullable=False, unique=True))
    recipe: str
    recipe_order: int
    night: str
    keys: str  # JSON of the grouping keys
    frames: str  # JSON list of workspace-relative raw paths
    count: int
    mjd: float
    exptime: float
    complete: bool
    reason: str | None = None


class ProductFrame(SQLModel, table=True):
    """A predicted product, named before anything runs."""

    __tablename__ = "product_frames"

    id: uuid.UUID | None = _pk()
    name: str = Field(sa_column=sa.Column(sa.String(), nullable=False, unique=True))
    set_name: str = Field(index=True)
    recipe: str
    recipe_order: int
    tag: str
    filepath: str  # session-relative
    night: str
    mjd: float
    exptime: float
    keys: str
    complete: bool


class ProductStatus(SQLModel, table=True):
    """A product's status in one session: ``fail`` when its recipe starts, ``pass`` only on
    success."""

    __tablename__ = "product_status"
    __table_args__ = (sa.UniqueConstraint("session", "product", name="uq_product_status"),)

    id: uuid.UUID | None = _pk()
    session: str
    product: str
    status: str
    message: str | None = None
    # the fingerprint of the inputs this status is about (path, size, mtime of each input)
    inputs: str | None = Field(default=None, nullable=True)
    # the lease of a run making the product now: its host and process, since when
    owner_host: str | None = Field(default=None, nullable=True)
    owner_pid: int | None = Field(default=None, nullable=True)
    claimed_at: datetime | None = Field(default=None, nullable=True)
    updated_at: datetime | None = _now_col("updated_at")


class SofMap(SQLModel, table=True):
    """One line of one session's SOF."""

    __tablename__ = "sof_map"

    id: uuid.UUID | None = _pk()
    session: str = Field(index=True)
    sof: str
    recipe: str
    recipe_order: int
    file: str
    tag: str
    complete: bool
    reason: str | None = None


class QualityControl(SQLModel, table=True):
    """A QC value of a product in a session, with its acceptable range (inclusive bounds)."""

    __tablename__ = "quality_control"

    id: uuid.UUID | None = _pk()
    session: str
    product: str
    recipe: str
    qc_name: str
    value: float | None = None
    unit: str | None = None
    comment: str | None = None
    min: float | None = None
    max: float | None = None
    flag: bool  # True when the value is outside the range
    created_at: datetime | None = _now_col("created_at")


class Session(SQLModel, table=True):
    """A reduction session: its own settings, statuses, SOFs and outputs."""

    __tablename__ = "sessions"

    id: uuid.UUID | None = _pk()
    name: str = Field(sa_column=sa.Column(sa.String(16), nullable=False, unique=True))
    current: bool = Field(
        sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    rules: str = Field(
        sa_column=sa.Column(sa.String(), nullable=False, server_default="generic-ccd")
    )
    created_at: datetime | None = _now_col("created_at")


class RemoteFile(SQLModel, table=True):
    """One cached version of a remote data file."""

    __tablename__ = "remote_files"
    __table_args__ = (sa.UniqueConstraint("name", "hash", name="uq_remote_files_version"),)

    id: uuid.UUID | None = _pk()
    name: str = Field(index=True)
    version: int
    urls: str  # JSON list of mirrors, in order
    hash: str = Field(index=True)  # "sha256:<hex>" or "md5:<hex>"
    size: int
    path: str  # relative to the cache folder
    is_default: bool = Field(
        default=None,
        sa_column=sa.Column("default", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    skip_hash: bool = Field(
        default=None,
        sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # the expected digest a skip_hash_check() download was accepted for (its real one: hash)
    accepted_hash: str | None = Field(default=None, nullable=True)
    created_at: datetime | None = _now_col("created_at")
    modified_at: datetime | None = _now_col("modified_at")


class RemoteUrl(SQLModel, table=True):
    """A URL a file was downloaded from (recorded after the file itself)."""

    __tablename__ = "remote_urls"

    id: uuid.UUID | None = _pk()
    url: str = Field(index=True)
    name: str
    hash: str
    fetched_at: datetime | None = _now_col("fetched_at")
