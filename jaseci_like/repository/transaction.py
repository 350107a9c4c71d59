"""Exactly one transaction per unit of work: ``read_ops()`` and ``write_ops()``.

A db source opens one of these per public call and does all its SQL through
it, so resolving, checking and changing happen in a single transaction::

    ops = DbOps(engine)
    async with ops.write_ops() as w:
        row = await w.create(Creator(table, {"name": "x"}))

The transaction commits when the block ends and rolls back when it raises. On
SQLite the db service's engine opens it with BEGIN IMMEDIATE (writers are
serialized; those of one process queue for the file first, see
:func:`serialize_writes`); on PostgreSQL writers lock the rows they change first
(``Querier(lock=True)`` / ``SELECT ... FOR UPDATE``). A failure before the commit
leaves nothing behind; a connection lost during the commit is reported as
:class:`CommitOutcomeUnknown`, never as a plain (retriable) failure.

Reads may run without a transaction of their own: on a *reader* paired with
the engine (SQLite), or as one statement (``read_statement()``); see
:mod:`jaseci_like.repository.readers`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Executable, Result, Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jaseci_like.repository.bulk import BulkResult, run_partial
from jaseci_like.repository.creator import BulkCreator, Creator, DependentCreatorSpec
from jaseci_like.repository.errors import CommitOutcomeUnknown, InvalidQuery, is_connection_lost
from jaseci_like.repository.pagination import Page
from jaseci_like.repository.purger import BatchPurger, Purger
from jaseci_like.repository.querier import BatchQuerier, Querier, SqlConnection, WithParent
from jaseci_like.repository.readers import (
    OneStatement,
    OnLoop,
    ReaderBusy,
    reader_of,
    stamp_of,
)
from jaseci_like.repository.scope import SearchScope
from jaseci_like.repository.updater import BatchUpdater, Updater
from jaseci_like.repository.upserter import BulkUpserter, Upserter
from jaseci_like.repository.write_queue import write_turn

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
D = TypeVar("D")


class ReadOps:
    """Reading inside one open transaction (or, from ``read_statement()``, one statement)."""

    def __init__(self, conn: SqlConnection) -> None:
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

    async def search_with_parent(self, spec: BatchQuerier, parent: Select[Any]) -> WithParent:
        """A page of ``spec`` and the one row of ``parent`` it belongs to, in ONE
        statement (see :meth:`BatchQuerier.execute_with_parent`): a listing that
        must also resolve what it lists fits in ``read_statement()``."""
        return await spec.execute_with_parent(self._conn, parent)

    async def batch_query_with_scopes(
        self, spec: BatchQuerier, scopes: Sequence[SearchScope]
    ) -> Page[Row[Any]]:
        """A page of ``spec`` limited to the rows of any of ``scopes`` (OR), through
        ``spec.scope_columns``: the default for a read made for a user. No scope at
        all raises :class:`EmptySearchScope` (400) instead of reading every tenant."""
        return await spec.with_scopes(scopes).execute(self._conn)

    async def batch_query_in_global(self, spec: BatchQuerier) -> Page[Row[Any]]:
        """A page of ``spec`` over every tenant, with no scope filter: only for a
        superadmin or an internal caller, and asked for by this name on purpose."""
        if spec.scope is not None:
            raise InvalidQuery("a global query takes no scope; use batch_query_with_scopes")
        return await spec.execute(self._conn)


class WriteOps(ReadOps):
    """Reading and writing inside one open transaction."""

    _conn: AsyncConnection

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)

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

    async def create_dependent(self, spec: DependentCreatorSpec[D], dependency: D) -> Row[Any]:
        """Insert the row ``spec`` builds from ``dependency`` (e.g. a parent's new id)."""
        return await Creator(spec.table, spec.build_row(dependency)).execute(self._conn)

    async def bulk_create_dependent(
        self, specs: Sequence[DependentCreatorSpec[D]], dependency: D
    ) -> BulkResult[Row[Any]]:
        """Each row ``specs`` build from ``dependency``, in a savepoint of its own, like
        :meth:`bulk_create`: a refused row fails alone. To make the children all or
        nothing, raise when the result has failures: the whole unit rolls back."""

        async def one(index: int, spec: DependentCreatorSpec[D]) -> Row[Any]:
            return await self.create_dependent(spec, dependency)

        return await run_partial(self._conn, specs, one)

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

    def change_stamp(self, channel: str | None = None) -> Hashable | None:
        """A value that stays the same as long as nothing that matters is committed,
        by any connection or process, or None if that cannot be told now.

        On SQLite any commit moves it (``channel`` is not needed). On PostgreSQL
        only a commit that notifies ``channel`` does (``NOTIFY``, usually from a
        trigger on the tables a cache reads); the first call with a channel starts
        listening, and until the listener is up, or while it is down, the stamp is
        None. A cache of read results may keep an entry while the stamp taken
        *before* reading it is still the current one; with None it must read again.
        """
        stamp = stamp_of(self.engine)
        return stamp(channel) if stamp is not None else None

    @asynccontextmanager
    async def read_statement(self) -> AsyncIterator[ReadOps]:
        """A read of ONE statement, outside any transaction: atomic by itself, it needs
        no BEGIN and COMMIT (PostgreSQL: one round trip, in autocommit; SQLite: one
        call on the reader, or on the engine when the reader would wait). A second
        statement raises :class:`InvalidQuery`: a read of several needs
        :meth:`read_ops`, whose transaction gives them one snapshot."""
        yield ReadOps(OneStatement(self.engine))

    @asynccontextmanager
    async def read_ops(self) -> AsyncIterator[ReadOps]:
        # A plain transaction: READ ONLY would cost a characteristic set and reset
        # per checkout; ReadOps offering no write method is the guard instead.
        reader = reader_of(self.engine)
        if reader is not None:
            with reader.connect() as sync_conn:
                try:
                    transaction = sync_conn.begin()
                except ReaderBusy:
                    pass
                else:
                    with transaction:
                        yield ReadOps(OnLoop(sync_conn))
                    return
        async with self.engine.connect() as conn, conn.begin():
            yield ReadOps(conn)

    @asynccontextmanager
    async def write_ops(self) -> AsyncIterator[WriteOps]:
        """A writing transaction; a connection lost while it commits raises
        :class:`CommitOutcomeUnknown` (the change may or may not be there). On an
        engine given to :func:`serialize_writes` it first waits for its turn."""
        committing = False
        try:
            async with write_turn(self.engine), self.engine.connect() as conn, conn.begin():
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
