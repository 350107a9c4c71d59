"""Reads without a transaction of their own: the SQLite reader and one-statement reads.

Reads may run on a *reader*: a synchronous engine on the same database that
:func:`use_reader` pairs with the async one, used directly on the event loop.
The db service pairs one with each SQLite file database: a WAL read never waits
for a writer and takes tens of microseconds, while each statement through
aiosqlite costs four hand-offs to its thread and back (about 0.1 ms each on a
small machine). A reader that cannot take its snapshot at once (another
connection is recovering the WAL) raises :class:`ReaderBusy` when the
transaction begins, and that read goes through the async engine instead.

A read that is ONE statement needs no transaction around it: a statement is
atomic by itself and reads one snapshot, on PostgreSQL and in SQLite alike.
``read_statement()`` runs it so: on PostgreSQL in autocommit, saving the BEGIN
and COMMIT round trips (two of three for a short read); on the SQLite reader
without its BEGIN, snapshot read and COMMIT (one call instead of four).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Hashable
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Executable, Result, event
from sqlalchemy.engine import CursorResult
from sqlalchemy.engine.cursor import FullyBufferedCursorFetchStrategy
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from jaseci_like.repository.driver_reads import DriverFailed, driver_reads_of
from jaseci_like.repository.errors import InvalidQuery

log = logging.getLogger(__name__)


class ReaderBusy(Exception):
    """A reader could not begin its transaction without waiting (see :func:`use_reader`)."""


class ChangeStamp(Protocol):
    """Tells whether something was committed to a database since it was last asked."""

    def __call__(self, channel: str | None = None) -> Hashable | None:
        """A value that stays the same as long as nothing is committed to the database
        by any connection of any process (SQLite), or, where the database names its
        changes (PostgreSQL), as long as no commit notifies ``channel``; None when
        that cannot be told now."""
        ...

    def close(self) -> None: ...


#: Set on a connection that runs one statement outside any transaction
#: (``DbOps.read_statement``): the SQLite reader's ``begin`` event skips its BEGIN
#: and snapshot read for it.
ONE_STATEMENT = "jaseci_like_one_statement"

#: Async engine (its ``sync_engine``) -> the reader paired with it.
_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
#: Async engine (its ``sync_engine``) -> its reader's connections for one statement.
_STATEMENT_CONNECTIONS: weakref.WeakKeyDictionary[Engine, _StatementConnections] = (
    weakref.WeakKeyDictionary()
)
#: Async engine (its ``sync_engine``) -> its change stamp.
_STAMPS: weakref.WeakKeyDictionary[Engine, ChangeStamp] = weakref.WeakKeyDictionary()


def use_reader(
    engine: AsyncEngine, reader: Engine, change_stamp: ChangeStamp | None = None
) -> None:
    """Run the reads of :class:`DbOps` over ``engine`` on ``reader``, synchronously on
    the event loop; ``reader`` (and ``change_stamp``) are closed with ``engine``.

    Only for a database whose reads never wait on locks (SQLite in WAL mode): a
    read that would wait must raise :class:`ReaderBusy`, from the reader's
    ``begin`` event or from its statement (a ``handle_error`` event), and is then
    run on ``engine``. The reader's pool must never block a checkout
    (``max_overflow=-1``): the loop thread cannot wait for itself.
    ``change_stamp`` backs :meth:`DbOps.change_stamp`.
    """
    _READERS[engine.sync_engine] = reader
    kept = _STATEMENT_CONNECTIONS[engine.sync_engine] = _StatementConnections(reader)

    def disposed(_: Any) -> None:
        kept.close()
        reader.dispose()

    event.listen(engine.sync_engine, "engine_disposed", disposed)
    if change_stamp is not None:
        use_change_stamp(engine, change_stamp)


def use_change_stamp(engine: AsyncEngine, change_stamp: ChangeStamp) -> None:
    """Back :meth:`DbOps.change_stamp` on ``engine`` with ``change_stamp``, closed with it."""
    _STAMPS[engine.sync_engine] = change_stamp
    event.listen(engine.sync_engine, "engine_disposed", lambda _: change_stamp.close())


def one_statement(conn: Connection) -> bool:
    """Whether ``conn`` runs one statement outside any transaction (see ``read_statement``)."""
    return bool(conn.get_execution_options().get(ONE_STATEMENT, False))


def reader_of(engine: AsyncEngine) -> Engine | None:
    """The reader :func:`use_reader` paired with ``engine``, if any."""
    return _READERS.get(engine.sync_engine)


def stamp_of(engine: AsyncEngine) -> ChangeStamp | None:
    """The change stamp :func:`use_change_stamp` gave ``engine``, if any."""
    return _STAMPS.get(engine.sync_engine)


def transaction_engines(engine: AsyncEngine) -> tuple[Engine, ...]:
    """The engines whose ``begin`` events the units of work of :class:`DbOps` over
    ``engine`` fire: ``engine``'s own, and its reader's if it has one."""
    reader = _READERS.get(engine.sync_engine)
    return (engine.sync_engine,) if reader is None else (engine.sync_engine, reader)


class OnLoop:
    """A reader's connection behind the async ``execute`` of :class:`SqlConnection`."""

    __slots__ = ("_conn", "dialect")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        return self._conn.execute(statement, parameters)


class _StatementConnections:
    """One connection of a reader per thread, kept checked out for one-statement reads.

    Such a read runs whole (execute, rows buffered, done) without yielding, so the
    thread's connection is never in two reads at once; keeping it spares the pool's
    checkout and return, which cost more than the statement. Closed with the engine.
    """

    def __init__(self, reader: Engine) -> None:
        self._reader = reader
        self._by_thread: dict[int, Connection] = {}

    def run(self, statement: Executable, parameters: Any) -> Result[Any]:
        thread = threading.get_ident()
        conn = self._by_thread.get(thread)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._reader.connect().execution_options(**{ONE_STATEMENT: True})
            self._by_thread[thread] = conn
        try:
            return _buffered(conn.execute(statement, parameters))
        finally:
            # Ends SQLAlchemy's own transaction (it begins one per statement, which
            # ``begin`` listeners count); SQLite holds none in autocommit.
            if conn.in_transaction():
                conn.rollback()

    def close(self) -> None:
        connections, self._by_thread = self._by_thread, {}
        for conn in connections.values():
            conn.close()


def _autocommit_statement(engine: Engine, statement: Executable, parameters: Any) -> Result[Any]:
    """``statement`` on a connection of ``engine`` in autocommit, rows buffered; in one
    greenlet (checkout, execute, return), not one per step."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT", **{ONE_STATEMENT: True})
        return _buffered(conn.execute(statement, parameters))


def _buffered(result: Result[Any]) -> Result[Any]:
    """``result`` with every row taken from the driver now (converted as it is read), so
    nothing stays open on the connection: SQLite keeps a statement's snapshot while
    it has rows left, and the connection serves the next read at once."""
    if isinstance(result, CursorResult) and result.returns_rows:
        result.cursor_strategy = FullyBufferedCursorFetchStrategy(result.cursor)
    return result


class OneStatement:
    """What :meth:`DbOps.read_statement` reads through: one statement, then no more.

    On a reader, the thread's kept connection runs it (a statement that would wait,
    :class:`ReaderBusy`, goes to the engine instead, whose thread may wait); on a
    server, a pooled connection in autocommit does, in one greenlet."""

    __slots__ = ("_engine", "_used", "dialect")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._used = False
        self.dialect = engine.dialect

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        if self._used:
            raise InvalidQuery(
                "read_statement() runs one statement: a read of more needs read_ops()"
            )
        self._used = True
        sync_engine = self._engine.sync_engine
        driver = driver_reads_of(self._engine)
        compiled = None if driver is None else driver.compiled(statement)
        if driver is not None and compiled is not None:
            try:
                return await greenlet_spawn(driver.run, compiled, parameters)
            except DriverFailed as exc:  # SQLAlchemy runs it again, and gives its error
                cause = type(exc.__cause__ or exc).__name__
                log.debug("a one-statement read through the driver failed (%s)", cause)
        kept = _STATEMENT_CONNECTIONS.get(sync_engine)
        if kept is not None:
            try:
                return kept.run(statement, parameters)
            except ReaderBusy:
                async with self._engine.connect() as conn:
                    return await conn.execute(statement, parameters)
        result: Result[Any] = await greenlet_spawn(
            _autocommit_statement, sync_engine, statement, parameters
        )
        return result
