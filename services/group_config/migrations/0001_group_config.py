"""Group-config tables: domains, groups, users, memberships, dotfiles.

Revision ID: 0001_group_config
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_group_config"
down_revision = None
branch_labels = ("group_config",)
depends_on = "0001_globs"

_ACTIVE = sa.text("status = 'active'")


def _when() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "gc_domains",
        sa.Column("name", sa.String(64), primary_key=True),
        _when(),
    )
    op.create_table(
        "gc_groups",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "domain_name",
            sa.String(64),
            sa.ForeignKey("gc_domains.name", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("name", sa.String(64), nullable=False),
        _when(),
        sa.UniqueConstraint("domain_name", "name", name="uq_gc_groups_domain_name"),
    )
    op.create_table(
        "gc_users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column(
            "domain_name",
            sa.String(64),
            sa.ForeignKey("gc_domains.name", ondelete="RESTRICT"),
            nullable=False,
        ),
        _when(),
        sa.CheckConstraint("role IN ('superadmin', 'admin', 'user')", name="ck_gc_users_role"),
    )
    op.create_table(
        "gc_memberships",
        sa.Column(
            "group_id",
            sa.Uuid(),
            sa.ForeignKey("gc_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("gc_users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _when(),
    )
    op.create_index("ix_gc_memberships_user", "gc_memberships", ["user_id"])
    op.create_table(
        "gc_dotfiles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "group_id",
            sa.Uuid(),
            sa.ForeignKey("gc_groups.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("permission", sa.String(3), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("path_bytes", sa.Integer(), nullable=False),
        sa.Column("data_bytes", sa.Integer(), nullable=False),
        _when(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'deleted')", name="ck_gc_dotfiles_status"),
    )
    op.create_index(
        "uq_gc_dotfiles_active_path",
        "gc_dotfiles",
        ["group_id", "path"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_index("ix_gc_dotfiles_group", "gc_dotfiles", ["group_id", "id"])


def downgrade() -> None:
    op.drop_table("gc_dotfiles")
    op.drop_table("gc_memberships")
    op.drop_table("gc_users")
    op.drop_table("gc_groups")
    op.drop_table("gc_domains")
