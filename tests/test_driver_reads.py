"""One-statement reads on PostgreSQL through asyncpg directly (``repository/driver_reads``):
the same rows, keys and types as SQLAlchemy gives, the statement counted, the pool
left whole when a read fails or is cancelled, and nothing lost under concurrent use.

A real PostgreSQL server; the engine is made the way the db service makes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from jaseci_like_services.db import engine as engines
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    event,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.loop import RuntimeLoop
from jaseci_like.repository import DbOps, UtcDateTime, driver_reads_of
from tests.servers import PostgresServer

T = TypeVar("T")
meta = MetaData()
things = Table(
    "dr_things",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("uid", Uuid, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("note", String(50), nullable=True),
)
EPOCH = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
ROWS = [
    {
        "id": n,
        "uid": uuid.UUID(int=n),
        "at": EPOCH + dt.timedelta(hours=n),
        "note": None if n % 3 == 0 else f"n{n}",
    }
    for n in range(1, 13)
]
#: Built once, so the driver compiles it once (a statement is its cache key).
SINCE = (
    select(things).where(things.c.at >= bindparam("since", type_=UtcDateTime)).order_by(things.c.id)
)
BOTH = union_all(
    select(things.c.id, things.c.at, literal(0).label("part")).where(things.c.id == 1),
    select(things.c.id, things.c.at, literal(1).label("part")).where(things.c.id > 10),
)


@dataclass
class Pg:
    loop: RuntimeLoop
    engine: AsyncEngine
    ops: DbOps
    sent: list[str]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro, timeout=60)

    async def one(self, statement: Any, params: dict[str, Any] | None = None) -> Any:
        async with self.ops.read_statement() as r:
            return await r.execute(statement, params)

    async def by_sqlalchemy(self, statement: Any, params: dict[str, Any] | None = None) -> Any:
        async with self.engine.connect() as conn:
            return await conn.execute(statement, params)


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Pg]:
    loop = RuntimeLoop("driver-reads-test")
    engine = engines.create_engine(
        make_url(postgres_url), echo=False, pool_size=3, busy_timeout_ms=10_000
    )

    async def create() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(meta.drop_all)
            await conn.run_sync(meta.create_all)
            await conn.execute(insert(things), ROWS)

    loop.run(create())
    reads = driver_reads_of(engine)
    assert reads is not None, "the db service's PostgreSQL engine reads through asyncpg"
    sent: list[str] = []
    reads.observers.append(sent.append)
    try:
        yield Pg(loop, engine, DbOps(engine), sent)
    finally:
        loop.run(engine.dispose())
        loop.stop()


def _same(pg: Pg, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
    """Read ``statement`` twice (the second through the driver) and by SQLAlchemy:
    the same keys, rows and value types."""
    pg.run(pg.one(statement, params))  # first sight: SQLAlchemy's
    before = len(pg.sent)
    ours = pg.run(pg.one(statement, params))
    assert len(pg.sent) == before + 1, "the second read went through the driver"
    theirs = pg.run(pg.by_sqlalchemy(statement, params))
    assert list(ours.keys()) == list(theirs.keys())
    mine, reference = ours.all(), theirs.all()
    assert [tuple(r) for r in mine] == [tuple(r) for r in reference]
    for a, b in zip(mine, reference, strict=True):
        assert [type(v) for v in a] == [type(v) for v in b]
    return list(mine)


def test_rows_keys_and_types_are_sqlalchemys(pg: Pg) -> None:
    since = dt.datetime(2026, 1, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    rows = _same(pg, SINCE, {"since": since})
    # 07:00 UTC and later: ids 4.. (03:04 + n hours >= 07:00).
    assert [r.id for r in rows] == list(range(4, 13))
    assert all(r.at.tzinfo is dt.UTC for r in rows)
    assert rows[0]._mapping["uid"] == uuid.UUID(int=4)
    assert rows[2].note is None  # id 6


def test_a_type_the_driver_cannot_convert_alone_is_left_to_sqlalchemy(pg: Pg) -> None:
    """asyncpg's Numeric conversion needs the column's type code, known only from an
    answer: such a statement is never compiled for the driver."""
    ratio = select(func.sum(things.c.id) / bindparam("by", type_=Integer))
    for _ in range(3):
        assert float(pg.run(pg.one(ratio, {"by": 2})).scalar_one()) == 39.0
    assert pg.sent == []


def test_a_compound_statement_and_an_empty_answer(pg: Pg) -> None:
    rows = _same(pg, BOTH)
    assert [(r.id, r.part) for r in rows] == [(1, 0), (11, 1), (12, 1)]
    empty = select(things.c.id).where(things.c.id > bindparam("above"))
    assert _same(pg, empty, {"above": 100}) == []
    assert list(pg.run(pg.one(empty, {"above": 100})).keys()) == ["id"]


def test_a_statement_built_for_one_read_is_left_to_sqlalchemy(pg: Pg) -> None:
    seen: list[str] = []
    event.listen(pg.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    for n in range(3):
        result = pg.run(pg.one(select(func.count()).select_from(things).where(things.c.id > n)))
        assert result.scalar_one() == 12 - n
    assert pg.sent == [] and len(seen) == 3


def test_a_read_that_fails_has_sqlalchemys_error_and_the_pool_is_whole(pg: Pg) -> None:
    """A statement refused by the server (through the driver) is run again by
    SQLAlchemy, whose error the caller sees; no connection is kept out."""
    failing = select(func.sum(things.c.id // bindparam("by", type_=Integer)))
    for _ in range(2):  # the second through the driver
        assert pg.run(pg.one(failing, {"by": 2})).scalar_one() == 36
    assert len(pg.sent) == 1
    with pytest.raises(DBAPIError, match="division by zero"):
        pg.run(pg.one(failing, {"by": 0}))
    assert pg.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert pg.run(pg.one(failing, {"by": 3})).scalar_one() == 22
    assert len(pg.sent) == 2


def test_connections_a_restart_broke_are_not_handed_out_again(
    pg: Pg, postgres_server: PostgresServer, postgres_url: str
) -> None:
    async def several() -> None:  # the pool's connections, all warm
        await asyncio.gather(*(pg.one(SINCE, {"since": EPOCH}) for _ in range(3)))

    pg.run(several())
    database = postgres_url.rsplit("/", 1)[1]
    postgres_server.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()",
        dbname=database,
    )
    # The first read meets a dead connection (the driver's), then another
    # (SQLAlchemy's, which renews the pool): a disconnect, as without the driver.
    with pytest.raises(DBAPIError) as failed:
        pg.run(pg.one(SINCE, {"since": EPOCH}))
    assert failed.value.connection_invalidated
    for _ in range(4):
        assert len(pg.run(pg.one(SINCE, {"since": EPOCH})).all()) == 12


def test_a_cancelled_read_does_not_return_its_connection_mid_answer(pg: Pg) -> None:
    sleeping = select(func.pg_sleep(bindparam("seconds", type_=Integer)))
    pg.run(pg.one(sleeping, {"seconds": 0}))

    async def cancel_one() -> None:
        started = len(pg.sent)
        task = asyncio.ensure_future(pg.one(sleeping, {"seconds": 30}))
        # Cancelled once the statement is on the wire: the driver is fetching.
        while pg.engine.sync_engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(pg.sent) == started

    pg.run(cancel_one())
    assert pg.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    for _ in range(4):  # every pooled connection answers its own statement
        assert len(pg.run(pg.one(SINCE, {"since": EPOCH})).all()) == 12


def test_concurrent_reads_each_get_their_own_answer(pg: Pg) -> None:
    one = select(things).where(things.c.id == bindparam("id"))

    async def many() -> list[int]:
        reads = [pg.one(one, {"id": 1 + n % 12}) for n in range(60)]
        return [r.one().id for r in await asyncio.gather(*reads)]

    assert pg.run(many()) == [1 + n % 12 for n in range(60)]
    assert pg.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert len(pg.sent) >= 50  # all but the first sight(s) through the driver
