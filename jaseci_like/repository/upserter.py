"""Insert-or-update: one row (``Upserter``), or many with partial failures (``BulkUpserter``).

``INSERT ... ON CONFLICT (...) [WHERE ...] DO UPDATE`` on SQLite and PostgreSQL;
``conflict_where`` names a partial unique index (e.g. only active rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, TextClause
from sqlalchemy.ext.asyncio import AsyncConnection

from jaseci_like.repository.bulk import BulkResult, run_partial
from jaseci_like.repository.errors import InvalidQuery, translate_row_error


@dataclass(frozen=True)
class Upserter:
    """Insert ``values``, or update ``update_columns`` of the row that conflicts on
    ``conflict_columns`` (every non-key value column when not given)."""

    table: Table
    values: Mapping[str, Any]
    conflict_columns: Sequence[str]
    conflict_where: ColumnElement[bool] | TextClause | None = None
    update_columns: Sequence[str] | None = None

    async def execute(self, conn: AsyncConnection) -> Row[Any]:
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = conn.dialect.name
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(self.table)
        elif dialect == "sqlite":
            stmt = sqlite.insert(self.table)
        else:
            raise InvalidQuery(f"upsert is not supported on {dialect}")
        stmt = stmt.values(dict(self.values))
        names = self.update_columns
        if names is None:
            names = [k for k in self.values if k not in self.conflict_columns]
        stmt = stmt.on_conflict_do_update(
            index_elements=list(self.conflict_columns),
            index_where=self.conflict_where,
            set_={name: stmt.excluded[name] for name in names},
        ).returning(*self.table.c)
        try:
            return (await conn.execute(stmt)).one()
        except Exception as exc:
            error = translate_row_error(exc, f"{self.table.name} row")
            if error is None:
                raise
            raise error from exc


@dataclass(frozen=True)
class BulkUpserter:
    """Upsert each of ``rows`` in a savepoint of its own; failures come back with their index."""

    table: Table
    rows: Sequence[Mapping[str, Any]]
    conflict_columns: Sequence[str]
    conflict_where: ColumnElement[bool] | TextClause | None = None
    update_columns: Sequence[str] | None = None

    async def execute(self, conn: AsyncConnection) -> BulkResult[Row[Any]]:
        async def one(index: int, values: Mapping[str, Any]) -> Row[Any]:
            spec = Upserter(
                self.table, values, self.conflict_columns, self.conflict_where, self.update_columns
            )
            return await spec.execute(conn)

        return await run_partial(conn, self.rows, one)
