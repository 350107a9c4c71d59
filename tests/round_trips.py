"""Counting the calls a unit of work makes to its database, with SQLAlchemy engine events.

PYTEST_DONT_REWRITE (imported by tests and by ``benchmarks/api.py``).

A *round trip* here is one exchange with the database server (PostgreSQL) or
one call into SQLite:

- each statement (``before_cursor_execute``, or a one-statement read run through
  asyncpg directly: ``DriverReads.observers``);
- the BEGIN and the COMMIT or ROLLBACK of a transaction the server really opens
  (``begin``/``commit``/``rollback``), none in autocommit mode; the SQLite
  reader's BEGIN takes two calls (BEGIN, and the read that takes its snapshot);
- each liveness ping of a pooled connection (the dialect's ``do_ping``, which
  has no event of its own: the counter wraps it while it counts).

Prepared statements are cached per connection, so a warm connection sends each
statement once; the first use of a statement on a connection costs more, and a
counter meant for the steady state counts after a warm-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.repository import driver_reads_of, one_statement, reader_of

AUTOCOMMIT = "AUTOCOMMIT"


def _autocommit(conn: Connection) -> bool:
    """No transaction on the server: autocommit, or one statement on the SQLite reader."""
    level = conn.get_execution_options().get("isolation_level")
    return level == AUTOCOMMIT or one_statement(conn)


def in_http_request() -> bool:
    """Whether the call is made by a request uvicorn serves (its ``run_asgi`` task), not
    by the runtime's own work (heartbeats, the leader lease) on the same engine."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return False
    return task is not None and task.get_coro().__qualname__.endswith("run_asgi")  # type: ignore[union-attr]


class RoundTrips:
    """Counts the round trips of ``engine`` (and of the SQLite reader paired with it)
    while open: ``with RoundTrips(engine) as trips: ...; trips.count``. With ``only``,
    just the calls made where ``only()`` is true (e.g. :func:`in_http_request`)."""

    def __init__(self, engine: AsyncEngine, only: Callable[[], bool] | None = None) -> None:
        self.engine = engine
        self.only = only
        self.count = 0
        #: What was counted, in order: "statement", "begin", "commit", "rollback", "ping".
        self.calls: list[str] = []
        reader = reader_of(engine)
        self._reader = reader
        self._listening: list[tuple[Engine, str, Callable[..., None]]] = []
        self._pinging: Any = None

    def __enter__(self) -> Self:
        for target in (self.engine.sync_engine, self._reader):
            if target is None:
                continue
            for name, listener in (
                ("before_cursor_execute", self._statement),
                ("begin", self._begin),
                ("commit", self._end("commit")),
                ("rollback", self._end("rollback")),
            ):
                event.listen(target, name, listener)
                self._listening.append((target, name, listener))
        dialect = self.engine.sync_engine.dialect
        self._pinging = vars(dialect).get("do_ping")  # another counter's, if any
        pinging = dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            self._add("ping")
            return bool(pinging(dbapi_connection))

        dialect.do_ping = counted_ping  # type: ignore[method-assign]
        reads = driver_reads_of(self.engine)
        if reads is not None:  # one-statement reads through asyncpg: no engine event
            reads.observers.append(self._driver_statement)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for target, name, listener in self._listening:
            event.remove(target, name, listener)
        self._listening.clear()
        reads = driver_reads_of(self.engine)
        if reads is not None and self._driver_statement in reads.observers:
            reads.observers.remove(self._driver_statement)
        dialect = self.engine.sync_engine.dialect
        if self._pinging is None:
            delattr(dialect, "do_ping")  # the class's own again
        else:
            dialect.do_ping = self._pinging  # type: ignore[method-assign]

    def reset(self) -> None:
        self.count = 0
        self.calls.clear()

    def _add(self, what: str, calls: int = 1) -> None:
        if self.only is not None and not self.only():
            return
        self.count += calls
        self.calls.extend([what] * calls)

    def _statement(self, conn: Connection, *_: Any) -> None:
        self._add("statement")

    def _driver_statement(self, sql: str) -> None:
        self._add("statement")

    def _begin(self, conn: Connection) -> None:
        if _autocommit(conn):
            return
        # The reader opens its snapshot with a read right after BEGIN.
        self._add("begin", 2 if conn.engine is self._reader else 1)

    def _end(self, what: str) -> Callable[[Connection], None]:
        def ended(conn: Connection) -> None:
            if not _autocommit(conn):
                self._add(what)

        return ended
