"""The SQL table that holds globs durably, and the statements on it.

The db service's Alembic migrations create this table; a test checks that the
migrations and this definition agree.
"""

from __future__ import annotations

from collections.abc import Sequence

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


async def store(engine: AsyncEngine, name: str, value: str) -> None:
    """Insert or update one glob, in one transaction."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(globs)
        .values(name=name, value=value, version=1)
        .on_conflict_do_update(
            index_elements=[globs.c.name],
            set_={"value": value, "version": globs.c.version + 1, "updated_at": func.now()},
        )
    )
    async with engine.begin() as conn:
        await conn.execute(stmt)


async def remove(engine: AsyncEngine, name: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(globs).where(globs.c.name == name))


async def names(engine: AsyncEngine) -> Sequence[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(globs.c.name).order_by(globs.c.name))
        return list(rows.scalars())
