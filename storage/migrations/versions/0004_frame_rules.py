"""raw_frames.rules: the ruleset (instrument definition) that classified each frame

Revision ID: 0004
Revises: 0003

A workspace may hold the frames of several cameras, each classified by the rules that claim
it; their sets, products and cascade follow that ruleset. Rows of earlier versions get ""
(the session's first ruleset).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("raw_frames") as batch:
        batch.add_column(sa.Column("rules", _TEXT(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("raw_frames") as batch:
        batch.drop_column("rules")
