"""Tables of the group-config service (SQLAlchemy Core; the migration creates them).

At most one *active* dotfile per group and path: a partial unique index on both
SQLite and PostgreSQL, so soft-deleted rows keep their history and a path can
be created again. ``path_bytes``/``data_bytes`` hold the UTF-8 sizes, so the
byte limit is one ``sum()`` on any dialect.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from jaseci_like.repository import UtcDateTime

metadata = MetaData()

ACTIVE_ONLY = text("status = 'active'")

domains = Table(
    "gc_domains",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)

groups = Table(
    "gc_groups",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "domain_name",
        String(64),
        ForeignKey("gc_domains.name", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("name", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("domain_name", "name", name="uq_gc_groups_domain_name"),
)

users = Table(
    "gc_users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column(
        "domain_name",
        String(64),
        ForeignKey("gc_domains.name", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("role IN ('superadmin', 'admin', 'user')", name="ck_gc_users_role"),
)

memberships = Table(
    "gc_memberships",
    metadata,
    Column("group_id", Uuid, ForeignKey("gc_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Uuid, ForeignKey("gc_users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_gc_memberships_user", "user_id"),
)

dotfiles = Table(
    "gc_dotfiles",
    metadata,
    # An integer key grows with every insert: keyset pages on it never skip rows.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("group_id", Uuid, ForeignKey("gc_groups.id", ondelete="CASCADE"), nullable=False),
    Column("path", String(255), nullable=False),
    Column("permission", String(3), nullable=False),
    Column("data", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("path_bytes", Integer, nullable=False),
    Column("data_bytes", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("status IN ('active', 'deleted')", name="ck_gc_dotfiles_status"),
    Index(
        "uq_gc_dotfiles_active_path",
        "group_id",
        "path",
        unique=True,
        sqlite_where=ACTIVE_ONLY,
        postgresql_where=ACTIVE_ONLY,
    ),
    Index("ix_gc_dotfiles_group", "group_id", "id"),
)
