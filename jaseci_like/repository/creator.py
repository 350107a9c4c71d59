"""Creating rows: one (``Creator``), or many with partial failures (``BulkCreator``).

A row that depends on a value known only when it is written (a parent's generated
id) comes from a :class:`DependentCreatorSpec`: the repository creates the parent,
builds the dependency from its row and passes it on, so each spec keeps to one
table and the order of a multi-table write stays visible in the repository::

    async with ops.write_ops() as w:
        parent = await w.create(Creator(projects, values))
        children = await w.bulk_create_dependent(member_specs, parent.id)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import Insert, Row, Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from jaseci_like.repository.bulk import BulkResult, run_partial
from jaseci_like.repository.errors import translate_row_error

D_contra = TypeVar("D_contra", contravariant=True)


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


class DependentCreatorSpec(Protocol[D_contra]):
    """One row of ``table``, built from a ``dependency`` resolved when it runs."""

    @property
    def table(self) -> Table: ...

    def build_row(self, dependency: D_contra) -> Mapping[str, Any]: ...
