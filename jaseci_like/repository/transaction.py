"""Exactly one transaction per unit of work: ``read_ops()`` and ``write_ops()``.

A db source opens one of these per public call and does all its SQL through
it, so resolving, checking and changing happen in a single transaction::

    ops = DbOps(engine)
    async with ops.write_ops() as w:
        row = await w.create(Creator(table, {"name": "x"}))

The transaction commits when the block ends and rolls back when it raises. On
SQLite the db service's engine opens it with BEGIN IMMEDIATE (writers are
serialized); on PostgreSQL writers lock the rows they change first
(``Querier(lock=True)`` / ``SELECT ... FOR UPDATE``). A failure before the commit
leaves nothing behind; a connection lost during the commit is reported as
:class:`CommitOutcomeUnknown`, never as a plain (retriable) failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Executable, Result, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jaseci_like.repository.bulk import BulkResult, run_partial
from jaseci_like.repository.creator import BulkCreator, Creator
from jaseci_like.repository.errors import CommitOutcomeUnknown, is_connection_lost
from jaseci_like.repository.pagination import Page
from jaseci_like.repository.purger import BatchPurger, Purger
from jaseci_like.repository.querier import BatchQuerier, Querier
from jaseci_like.repository.updater import BatchUpdater, Updater
from jaseci_like.repository.upserter import BulkUpserter, Upserter

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741


class ReadOps:
    """Reading inside one open transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> str:
        return self._conn.dialect.name

    async def execute(self, stmt: Executable, params: Any = None) -> Result[Any]:
        """Run a statement a db source built (the SQL stays in the db source)."""
        return await self._conn.execute(stmt, params)

    async def query(self, spec: Querier) -> Row[Any] | None:
        return await spec.execute(self._conn)

    async def search(self, spec: BatchQuerier) -> Page[Row[Any]]:
        return await spec.execute(self._conn)


class WriteOps(ReadOps):
    """Reading and writing inside one open transaction."""

    async def create(self, spec: Creator) -> Row[Any]:
        return await spec.execute(self._conn)

    async def update(self, spec: Updater) -> Row[Any] | None:
        return await spec.execute(self._conn)

    async def upsert(self, spec: Upserter) -> Row[Any]:
        return await spec.execute(self._conn)

    async def purge(self, spec: Purger) -> Row[Any] | None:
        return await spec.execute(self._conn)

    async def batch_update(self, spec: BatchUpdater) -> int:
        return await spec.execute(self._conn)

    async def batch_purge(self, spec: BatchPurger) -> int:
        return await spec.execute(self._conn)

    async def bulk_create(self, spec: BulkCreator) -> BulkResult[Row[Any]]:
        return await spec.execute(self._conn)

    async def bulk_upsert(self, spec: BulkUpserter) -> BulkResult[Row[Any]]:
        return await spec.execute(self._conn)

    async def partial(
        self, items: Sequence[I], action: Callable[[int, I], Awaitable[T]]
    ) -> BulkResult[T]:
        """``action`` per item in a savepoint each; domain errors become per-item failures."""
        return await run_partial(self._conn, items, action)


class DbOps:
    """Opens the one transaction of each unit of work on ``engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def read_ops(self) -> AsyncIterator[ReadOps]:
        # A plain transaction: READ ONLY would cost a characteristic set and reset
        # per checkout; ReadOps offering no write method is the guard instead.
        async with self.engine.connect() as conn, conn.begin():
            yield ReadOps(conn)

    @asynccontextmanager
    async def write_ops(self) -> AsyncIterator[WriteOps]:
        """A writing transaction; a connection lost while it commits raises
        :class:`CommitOutcomeUnknown` (the change may or may not be there)."""
        committing = False
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield WriteOps(conn)
                committing = True  # the block is done: leaving it commits
        except Exception as exc:
            if committing and is_connection_lost(exc):
                raise CommitOutcomeUnknown(
                    "the connection to the database was lost while committing: the change "
                    "may or may not have been applied; read it back before trying again "
                    f"({type(exc).__name__})"
                ) from exc
            raise
