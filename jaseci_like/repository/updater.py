"""Changing rows: one by primary key (``Updater``), or many in one statement (``BatchUpdater``).

Only the fields given change: a field left at ``UNSET`` is not written, which
is different from writing None.

>>> changed({"name": "x", "note": UNSET})
{'name': 'x'}
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar

from sqlalchemy import ColumnElement, Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from jaseci_like.repository.errors import InvalidQuery, translate_row_error
from jaseci_like.repository.querier import pk_conditions
from jaseci_like.repository.scope import ScopeColumns, SearchScope, scope_conditions

T = TypeVar("T")


class Unset(enum.Enum):
    """The type of ``UNSET``: a field the caller did not give."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset.UNSET
#: A field of an update: a new value, or UNSET to leave it alone.
OptionalState: TypeAlias = T | Unset


def changed(values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``values`` that are not UNSET."""
    return {key: value for key, value in values.items() if value is not UNSET}


@dataclass(frozen=True)
class Updater:
    """Update one row of ``table`` by primary key within ``scope``; None if no such row.

    With no field given, nothing is written and the current row is returned.
    """

    table: Table
    pk: Any
    values: Mapping[str, Any]
    scope: SearchScope | None = None
    scope_columns: ScopeColumns | None = None

    async def execute(self, conn: AsyncConnection) -> Row[Any] | None:
        where = [
            *pk_conditions(self.table, self.pk),
            *scope_conditions(self.scope, self.scope_columns),
        ]
        values = changed(self.values)
        if not values:
            return (await conn.execute(select(self.table).where(*where))).first()
        stmt = update(self.table).where(*where).values(values).returning(*self.table.c)
        try:
            return (await conn.execute(stmt)).first()
        except Exception as exc:
            error = translate_row_error(exc, f"{self.table.name} row")
            if error is None:
                raise
            raise error from exc


@dataclass(frozen=True)
class BatchUpdater:
    """One UPDATE of every row matching ``conditions``: all or nothing; returns the count."""

    table: Table
    conditions: Sequence[ColumnElement[bool]]
    values: Mapping[str, Any]

    async def execute(self, conn: AsyncConnection) -> int:
        if not self.conditions:
            raise InvalidQuery(f"{self.table.name}: a batch update needs conditions")
        values = changed(self.values)
        if not values:
            return 0
        stmt = update(self.table).where(*self.conditions).values(values)
        try:
            return (await conn.execute(stmt)).rowcount
        except Exception as exc:
            error = translate_row_error(exc, f"{self.table.name} rows")
            if error is None:
                raise
            raise error from exc
