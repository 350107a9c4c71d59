"""Creating rows: one (``Creator``), or many with partial failures (``BulkCreator``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Insert, Row, Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jaseci_like.repository.bulk import BulkResult, run_partial
from jaseci_like.repository.errors import translate_row_error


@cache
def _insert(table: Table) -> Insert:
    # Built once per table: the values go in as parameters, so SQLAlchemy's
    # compiled-statement cache is hit without rebuilding the statement.
    return insert(table).returning(*table.c)


@dataclass(frozen=True)
class Creator:
    """Insert one row of ``table``; a constraint violation becomes a domain error."""

    table: Table
    values: Mapping[str, Any]

    async def execute(self, conn: AsyncConnection) -> Row[Any]:
        try:
            return (await conn.execute(_insert(self.table), dict(self.values))).one()
        except Exception as exc:
            error = translate_row_error(exc, f"{self.table.name} row")
            if error is None:
                raise
            raise error from exc


@dataclass(frozen=True)
class BulkCreator:
    """Insert each of ``rows`` in a savepoint of its own; failures come back with their index."""

    table: Table
    rows: Sequence[Mapping[str, Any]]

    async def execute(self, conn: AsyncConnection) -> BulkResult[Row[Any]]:
        async def one(index: int, values: Mapping[str, Any]) -> Row[Any]:
            return await Creator(self.table, values).execute(conn)

        return await run_partial(conn, self.rows, one)
