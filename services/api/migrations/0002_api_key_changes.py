"""PostgreSQL: NOTIFY jaseci_like_api_keys on every change to api_keys or gc_users.

A process remembers the keys it verified until a change that may alter what a
key authenticates as (a revocation, a deleted key, a user's new role or domain, a
deleted user) is committed, by any process or by hand; the trigger tells every
listening process at that commit (see ``jaseci_like_services.db.notify``).
SQLite needs none: its ``data_version`` moves with every commit.

Revision ID: 0002_api_key_changes
Revises: 0001_api
Create Date: 2027-01-08
"""

from __future__ import annotations

from alembic import op

revision = "0002_api_key_changes"
down_revision = "0001_api"
branch_labels = None
depends_on = None

#: ``KEYS_CHANNEL`` of ``jaseci_like_services.api.db_source`` (a migration keeps its own text).
CHANNEL = "jaseci_like_api_keys"
TABLES = ("api_keys", "gc_users")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION api_keys_changed() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    for table in TABLES:
        # Once per statement: a notification says "read again", not what changed.
        op.execute(
            f"CREATE TRIGGER {table}_notify_api_keys AFTER UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION api_keys_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_api_keys ON {table}")
    op.execute("DROP FUNCTION IF EXISTS api_keys_changed()")
