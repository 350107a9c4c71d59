"""The globs table: the durable copy of configuration (OrmHook).

Revision ID: 0001_globs
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_globs"
down_revision = None
branch_labels = ("db",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jaseci_like_globs",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )


def downgrade() -> None:
    op.drop_table("jaseci_like_globs")
