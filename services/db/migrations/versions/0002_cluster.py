"""The cluster tables: instance records, leases, fenced claims, refresh requests.

Revision ID: 0002_cluster
Revises: 0001_globs
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_cluster"
down_revision = "0001_globs"
branch_labels = None
depends_on = None

# Seconds since the epoch on the database's clock: a double, never a float4.
_SECONDS = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "jaseci_like_instances",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("seen_at", _SECONDS, nullable=False),
    )
    op.create_table(
        "jaseci_like_leases",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", _SECONDS, nullable=False),
    )
    op.create_table(
        "jaseci_like_claims",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", _SECONDS, nullable=False),
    )
    op.create_table(
        "jaseci_like_requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("created_at", _SECONDS, nullable=False),
        sa.Column("taken_at", _SECONDS, nullable=True),
    )
    op.create_index("ix_jaseci_like_requests_instance", "jaseci_like_requests", ["instance_id"])


def downgrade() -> None:
    op.drop_table("jaseci_like_requests")
    op.drop_table("jaseci_like_claims")
    op.drop_table("jaseci_like_leases")
    op.drop_table("jaseci_like_instances")
