"""The SQL table that holds globs durably, and the statements on it.

The db service's Alembic migrations create this table; a test checks that the
migrations and this definition agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()

globs = Table(
    "jaseci_like_globs",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("version", BigInteger, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


async def load(engine: AsyncEngine, name: str) -> str | None:
    async with engine.connect() as conn:
        row = await conn.execute(select(globs.c.value).where(globs.c.name == name))
        return row.scalar_one_or_none()


BeforeCommit = Callable[[str | None], None]


def _upsert(engine: AsyncEngine, name: str, value: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(globs)
        .values(name=name, value=value, version=1)
        .on_conflict_do_update(
            index_elements=[globs.c.name],
            set_={"value": value, "version": globs.c.version + 1, "updated_at": func.now()},
        )
    )


async def _before_commit(hook: BeforeCommit | None, value: str | None) -> None:
    # While the row (PostgreSQL) or the database (SQLite, BEGIN IMMEDIATE) is still
    # locked, so what the hook does (the Redis copy) happens in commit order.
    if hook is not None:
        await asyncio.to_thread(hook, value)


async def store(
    engine: AsyncEngine, name: str, value: str, before_commit: BeforeCommit | None = None
) -> None:
    """Insert or update one glob, in one transaction."""
    async with engine.begin() as conn:
        await conn.execute(_upsert(engine, name, value))
        await _before_commit(before_commit, value)


async def update(
    engine: AsyncEngine,
    name: str,
    change: Callable[[str | None], str],
    before_commit: BeforeCommit | None = None,
) -> str:
    """Read, change and write one glob in one transaction, the row locked meanwhile.

    ``change`` gets the current text (None when absent) and returns the new one;
    if it raises, nothing is written. (A glob that does not exist yet has no row
    to lock on PostgreSQL: two first writers of one name may both see None.)
    """
    async with engine.begin() as conn:
        query = select(globs.c.value).where(globs.c.name == name)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update()
        current = (await conn.execute(query)).scalar_one_or_none()
        value = change(current)
        await conn.execute(_upsert(engine, name, value))
        await _before_commit(before_commit, value)
        return value


async def remove(engine: AsyncEngine, name: str, before_commit: BeforeCommit | None = None) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(globs).where(globs.c.name == name))
        await _before_commit(before_commit, None)


async def names(engine: AsyncEngine) -> Sequence[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(globs.c.name).order_by(globs.c.name))
        return list(rows.scalars())
