"""Tables of the api service (SQLAlchemy Core; the migration creates them).

``api_keys`` keeps a SHA-256 of each key, never the key: a key is 256 random
bits, so a fast hash cannot be reversed or searched. ``api_task_owners`` says
who submitted a background task, so only they (or a superadmin) see or cancel it.
"""

from __future__ import annotations

from jaseci_like_services.group_config.models import users
from sqlalchemy import Column, ForeignKey, Index, MetaData, String, Table, Uuid

from jaseci_like.repository import UtcDateTime

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    #: The public part of a key (it names the key in listings and for revoking).
    Column("id", String(32), primary_key=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("label", String(64), nullable=True),
    #: Hex SHA-256 of the whole key.
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ix_api_keys_user", "user_id"),
)

api_task_owners = Table(
    "api_task_owners",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("user_id", Uuid, ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
