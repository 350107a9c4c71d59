"""One-statement reads on PostgreSQL handed to asyncpg directly: the one round trip
with little work around it.

A read that is one statement (:meth:`DbOps.read_statement`) needs nothing of what a
SQLAlchemy ``Connection`` builds around a statement even in autocommit (a
transaction object, an execution context, a cursor adapter, result metadata, the
isolation level set and reset). On a 2-core machine that is about 0.3 ms of CPU
per statement, three times asyncpg's own fetch; on the API's busiest route it was
most of the database's share of a request.

What is kept from SQLAlchemy: the SQL and the parameter order of its compiler
(compiled once per statement object, on its second use; a statement built for one
call is left to SQLAlchemy and its compiled cache), the bind and result
processors of the column types (``UtcDateTime`` and the rest behave as ever), the
engine's pool and its checkout events (the ping after idle, the loop guard), and
a :class:`~sqlalchemy.engine.Result` for the caller. asyncpg keeps its own
prepared statement per SQL text and connection.

A statement that fails here is run again by SQLAlchemy (a read, so running it
twice changes nothing): its error then has SQLAlchemy's form, which the retry
policy and the API's error answers read, and a connection that broke has been
invalidated first, so the pool does not hand it out again.

:class:`DriverReads` tells its ``observers`` of each statement it ran (its SQL): a
round-trip counter sees them there, as engine events do not.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Executable, Result
from sqlalchemy.engine import Dialect, IteratorResult
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.selectable import SelectBase
from sqlalchemy.util import await_only

Processor = Callable[[Any], Any] | None


def use_driver_reads(engine: AsyncEngine) -> DriverReads:
    """Run the one-statement reads of ``DbOps`` over ``engine`` (asyncpg) through the
    driver, as this module says."""
    reads = _DRIVER_READS[engine.sync_engine] = DriverReads(engine.sync_engine)
    return reads


def driver_reads_of(engine: AsyncEngine) -> DriverReads | None:
    """What :func:`use_driver_reads` gave for ``engine``, if it was called."""
    return _DRIVER_READS.get(engine.sync_engine)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    #: Bind names in the order of ``$1, $2, ...`` and each one's processor.
    names: tuple[str, ...]
    binders: tuple[Processor, ...]
    construct: Callable[[dict[str, Any] | None], dict[str, Any]]
    keys: tuple[str, ...]
    results: tuple[Processor, ...]

    def arguments(self, parameters: dict[str, Any] | None) -> list[Any]:
        values = self.construct(parameters)
        return [
            value if bind is None else bind(value)
            for value, bind in zip((values[n] for n in self.names), self.binders, strict=True)
        ]

    def rows(self, records: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not any(self.results):
            return [tuple(record) for record in records]
        results = self.results
        return [
            tuple(
                value if convert is None or value is None else convert(value)
                for value, convert in zip(record, results, strict=True)
            )
            for record in records
        ]


def _compile(statement: SelectBase, dialect: Dialect) -> _Compiled | None:
    compiled: Any = statement.compile(dialect=dialect)
    names = compiled.positiontup
    if names is None:
        return None
    escaped = {v: k for k, v in (compiled.escaped_bind_names or {}).items()}
    binds = compiled.binds
    binders = tuple(
        binds[escaped.get(name, name)].type.dialect_impl(dialect).bind_processor(dialect)
        for name in names
    )
    columns = statement.selected_columns
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return _Compiled(
        sql=compiled.string,
        names=tuple(names),
        binders=binders,
        construct=compiled.construct_params,
        keys=tuple(columns.keys()),
        results=results,
    )


class DriverReads:
    """One-statement reads of ``engine`` (asyncpg) through the driver (see the module)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._compiled: weakref.WeakKeyDictionary[Executable, _Compiled | None] = (
            weakref.WeakKeyDictionary()
        )
        self._seen: weakref.WeakSet[Executable] = weakref.WeakSet()
        #: Called with the SQL of each statement run here.
        self.observers: list[Callable[[str], None]] = []

    def compiled(self, statement: Executable) -> _Compiled | None:
        """``statement`` ready for the driver, or None: not a SELECT, not seen before
        (compiling a statement used once costs more than SQLAlchemy's cache), or not
        in a form this runs."""
        try:
            return self._compiled[statement]
        except KeyError:
            pass
        except TypeError:  # not weakly referable: never kept
            return None
        if not isinstance(statement, SelectBase) or statement not in self._seen:
            if isinstance(statement, SelectBase):
                self._seen.add(statement)
            return None
        try:
            found = _compile(statement, self._engine.dialect)
        except Exception:  # e.g. a type whose conversion needs the driver's type code
            found = None
        self._compiled[statement] = found
        return found

    def run(self, compiled: _Compiled, parameters: dict[str, Any] | None) -> Result[Any]:
        """In a greenlet (``greenlet_spawn``): check a connection out, fetch, return it.
        A failure of the checkout is raised as it is (SQLAlchemy's own: a pool timeout,
        a refused connection); one of the statement as :class:`DriverFailed`."""
        arguments = compiled.arguments(parameters)
        fairy = self._engine.pool.connect()
        try:
            driver: Any = fairy.driver_connection  # asyncpg's Connection
            records = await_only(driver.fetch(compiled.sql, *arguments))
        except Exception as exc:
            if driver.is_closed():
                fairy.invalidate(exc)
            raise DriverFailed(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:  # cancelled: the connection may be mid-answer
            fairy.invalidate()
            raise
        finally:
            fairy.close()
        for observe in self.observers:
            observe(compiled.sql)
        rows = compiled.rows(records)
        if rows and len(rows[0]) != len(compiled.keys):
            raise DriverFailed("the statement answered other columns than it selects")
        return IteratorResult(SimpleResultMetaData(compiled.keys), iter(rows))


class DriverFailed(Exception):
    """A statement failed through the driver: SQLAlchemy runs it again (see the module)."""


#: Async engine (its ``sync_engine``) -> its one-statement reads through the driver.
_DRIVER_READS: weakref.WeakKeyDictionary[Engine, DriverReads] = weakref.WeakKeyDictionary()
