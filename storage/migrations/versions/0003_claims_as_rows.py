"""product_status: the inputs' fingerprint and the claim (owner host/pid, claimed at) as columns

Revision ID: 0003
Revises: 0002

Until now both lived in the message text ("started by host:pid:thread [inputs <hex>]", "...
[inputs <hex>]"); the upgrade moves them into their columns and leaves the message its words.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("product_status") as batch:
        batch.add_column(sa.Column("inputs", _TEXT(), nullable=True))
        batch.add_column(sa.Column("owner_host", _TEXT(), nullable=True))
        batch.add_column(sa.Column("owner_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
    table = sa.table(
        "product_status",
        sa.column("_id", sa.Uuid()),
        sa.column("message", sa.String()),
        sa.column("inputs", sa.String()),
        sa.column("owner_host", sa.String()),
        sa.column("owner_pid", sa.Integer()),
        sa.column("claimed_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(table.c["_id"], table.c.message, table.c.updated_at)).all()
    for row_id, message, updated_at in rows:
        text, inputs = message or "", None
        head, sep, tail = text.rpartition(" [inputs ")
        if sep and tail.endswith("]"):
            text, inputs = head, tail[:-1]
        values: dict = {"message": text or None, "inputs": inputs}
        if text.startswith("started by "):
            host, _, rest = text[len("started by ") :].partition(":")
            pid = rest.split(":", 1)[0]
            values |= {
                "message": "being made",
                "owner_host": host,
                "owner_pid": int(pid) if pid.isdigit() else None,
                "claimed_at": updated_at,
            }
        conn.execute(sa.update(table).where(table.c["_id"] == row_id).values(**values))


def downgrade() -> None:
    with op.batch_alter_table("product_status") as batch:
        for name in ("claimed_at", "owner_pid", "owner_host", "inputs"):
            batch.drop_column(name)
