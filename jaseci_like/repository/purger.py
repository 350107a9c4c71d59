"""Removing rows for good: one by primary key (``Purger``), or many in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from jaseci_like.repository.errors import InvalidQuery, translate_integrity_error
from jaseci_like.repository.querier import pk_conditions
from jaseci_like.repository.scope import ScopeColumns, SearchScope, scope_conditions


@dataclass(frozen=True)
class Purger:
    """Delete one row of ``table`` by primary key within ``scope``; the row, or None."""

    table: Table
    pk: Any
    scope: SearchScope | None = None
    scope_columns: ScopeColumns | None = None

    async def execute(self, conn: AsyncConnection) -> Row[Any] | None:
        stmt = (
            delete(self.table)
            .where(
                *pk_conditions(self.table, self.pk),
                *scope_conditions(self.scope, self.scope_columns),
            )
            .returning(*self.table.c)
        )
        try:
            return (await conn.execute(stmt)).first()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, f"{self.table.name} row", deleting=True) from exc


@dataclass(frozen=True)
class BatchPurger:
    """One DELETE of every row matching ``conditions``: all or nothing; returns the count."""

    table: Table
    conditions: Sequence[ColumnElement[bool]]

    async def execute(self, conn: AsyncConnection) -> int:
        if not self.conditions:
            raise InvalidQuery(f"{self.table.name}: a batch purge needs conditions")
        try:
            return (await conn.execute(delete(self.table).where(*self.conditions))).rowcount
        except IntegrityError as exc:
            raise translate_integrity_error(exc, f"{self.table.name} rows", deleting=True) from exc
