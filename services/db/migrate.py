"""Alembic migrations: the db service's own, and those other services declare."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
#: The PostgreSQL advisory lock (any fixed bigint) that serializes migrations.
MIGRATION_LOCK = 0x6A6C_6D69_6772


def alembic_config(connection: Any, extra_locations: Iterable[Path] = ()) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    locations = [str(MIGRATIONS / "versions"), *(str(p) for p in extra_locations)]
    # A separator that cannot appear inside a path.
    config.set_main_option("path_separator", "newline")
    config.set_main_option("version_locations", "\n".join(locations))
    config.attributes["connection"] = connection
    return config


def heads(extra_locations: Iterable[Path] = ()) -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config(None, extra_locations)).get_heads())


async def current(engine: AsyncEngine) -> set[str]:
    """Revisions the database is at (empty for a new database)."""
    async with engine.connect() as conn:
        try:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return set()
        return {row[0] for row in rows}


async def upgrade(engine: AsyncEngine, extra_locations: Iterable[Path] = ()) -> set[str]:
    """Apply every pending migration; returns the revisions now current."""
    locations = list(extra_locations)

    def run(connection: Any) -> None:
        from alembic import command

        command.upgrade(alembic_config(connection, locations), "heads")

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Processes starting together would race to create the same tables; the
            # lock (released at commit) makes the later ones find them migrated.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(run)
    return await current(engine)
