"""The round trips the db layer spends, counted with engine events (``tests/round_trips.py``):
a one-statement read needs no BEGIN and COMMIT, a pooled connection in steady use is
not pinged, and one a server restart broke is replaced, its work retried.

SQLite files and a real PostgreSQL server; the engines are made the way the db
service makes them (``jaseci_like_services.db.engine.create_engine``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from jaseci_like_services.db import engine as engines
from jaseci_like_services.group_config import DotfileSpec
from sqlalchemy import Column, Integer, MetaData, Table, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.loop import RuntimeLoop
from jaseci_like.repository import Creator, DbOps, InvalidQuery, ReaderBusy, reader_of
from tests.group_config_fixtures import BACKENDS, ROOT, open_harness, sqlite_url
from tests.round_trips import RoundTrips
from tests.servers import PostgresServer

T = TypeVar("T")
meta = MetaData()
items = Table("rt_items", meta, Column("id", Integer, primary_key=True, autoincrement=False))


@dataclass
class Db:
    backend: str
    loop: RuntimeLoop
    engine: AsyncEngine
    ops: DbOps

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro, timeout=60)

    def count(self) -> int:
        async def read() -> int:
            async with self.ops.read_statement() as r:
                return int((await r.execute(select(func.count()).select_from(items))).scalar_one())

        return self.run(read())


def _engine(url: str, ping_idle_after: float = engines.PING_IDLE_AFTER) -> AsyncEngine:
    return engines.create_engine(
        make_url(url),
        echo=False,
        pool_size=5,
        busy_timeout_ms=10_000,
        ping_idle_after=ping_idle_after,
    )


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    backend: str = request.param
    url = sqlite_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("postgres_url")
    loop = RuntimeLoop("round-trips-test")
    engine = _engine(url)

    async def create() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
        async with DbOps(engine).write_ops() as w:
            await w.create(Creator(items, {"id": 1}))

    loop.run(create())
    try:
        yield Db(backend, loop, engine, DbOps(engine))
    finally:
        loop.run(engine.dispose())
        loop.stop()


def test_a_one_statement_read_is_one_round_trip(db: Db) -> None:
    db.count()  # warm: the connection, the prepared statement
    with RoundTrips(db.engine) as statement:
        assert db.count() == 1
    with RoundTrips(db.engine) as transaction:

        async def read() -> None:
            async with db.ops.read_ops() as r:
                await r.execute(select(func.count()).select_from(items))

        db.run(read())
    assert statement.calls == ["statement"]
    # What it saves: BEGIN and COMMIT (on the SQLite reader, the snapshot read too).
    begin = ["begin", "begin"] if db.backend == "sqlite" else ["begin"]
    assert transaction.calls == [*begin, "statement", "commit"]


def test_a_one_statement_read_refuses_a_second_statement(db: Db) -> None:
    async def two() -> None:
        async with db.ops.read_statement() as r:
            await r.execute(select(func.count()).select_from(items))
            await r.execute(select(func.count()).select_from(items))

    with pytest.raises(InvalidQuery, match="one statement"):
        db.run(two())


def test_a_one_statement_read_sees_every_commit_before_it(db: Db) -> None:
    async def add(n: int) -> None:
        async with db.ops.write_ops() as w:
            await w.create(Creator(items, {"id": n}))

    for n in range(2, 6):
        db.run(add(n))
        assert db.count() == n


def test_a_one_statement_read_the_sqlite_reader_cannot_serve_goes_to_the_engine(
    tmp_path: Path,
) -> None:
    """The reader's statement meets a lock (here a listener raises ReaderBusy, as its
    error handler does for SQLITE_BUSY): the engine, whose thread may wait, serves it."""
    loop = RuntimeLoop("busy-reader-test")
    engine = _engine(sqlite_url(tmp_path))
    try:

        async def create() -> None:
            async with engine.begin() as conn:
                await conn.run_sync(meta.create_all)

        loop.run(create())
        reader = reader_of(engine)
        assert reader is not None
        busy = threading.Event()
        busy.set()

        def refuse(*_: Any) -> None:
            if busy.is_set():
                raise ReaderBusy("test: the reader would wait")

        event.listen(reader, "before_cursor_execute", refuse)
        served: list[object] = []
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: served.append(a[2]))
        db = Db("sqlite", loop, engine, DbOps(engine))
        assert db.count() == 0
        assert any("count" in str(s) for s in served), "the engine did not serve the read"
        busy.clear()
        served.clear()
        assert db.count() == 0
        assert not any("count" in str(s) for s in served), "the reader did not serve it again"
    finally:
        loop.run(engine.dispose())
        loop.stop()


# -- liveness of pooled connections (PostgreSQL) ------------------------------------------------


def test_a_connection_in_steady_use_is_not_pinged_and_an_idle_one_is(postgres_url: str) -> None:
    loop = RuntimeLoop("ping-test")
    engine = _engine(postgres_url, ping_idle_after=0.3)
    ops = DbOps(engine)

    async def read() -> None:
        async with ops.read_statement() as r:
            await r.execute(text("SELECT 1"))

    try:
        loop.run(read())
        with RoundTrips(engine) as busy:
            for _ in range(20):
                loop.run(read())
        assert busy.calls == ["statement"] * 20
        time.sleep(0.5)
        with RoundTrips(engine) as idle:
            loop.run(read())
        assert idle.calls == ["ping", "statement"]
    finally:
        loop.run(engine.dispose())
        loop.stop()


def test_connections_a_restart_broke_are_replaced_and_the_work_retried(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """Every backend of the database ends while its connections sit in the pool, too
    briefly to be pinged: the next operation fails on one, the pool is renewed, and
    the repository's retry runs it again, successfully, with no ping on the way."""
    harness = open_harness("postgres", postgres_url)
    try:
        api = harness.app.sync
        api.domains.create(ROOT.domain, user=ROOT)
        group = api.groups.create("restart", user=ROOT)

        async def several() -> None:  # fill the pool with a few connections
            await asyncio.gather(
                *(harness.app.dotfiles.usage(group.id, user=ROOT) for _ in range(4))
            )

        harness.run(several())
        database = postgres_url.rsplit("/", 1)[1]
        postgres_server.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()",
            dbname=database,
        )
        with RoundTrips(harness.engine) as trips:
            created = api.dotfiles.create(group.id, DotfileSpec(".after", "x"), user=ROOT)
        assert created.dotfile.path == ".after"
        assert "ping" not in trips.calls
        metrics = harness.app.metrics
        assert metrics.value("attempts_total", operation="dotfile.create") == 2
        assert metrics.value("retries_total", operation="dotfile.create") == 1
        # The pool was renewed whole: the next ones need no retry.
        for n in range(3):
            api.dotfiles.create(group.id, DotfileSpec(f".more{n}", "x"), user=ROOT)
        assert metrics.value("attempts_total", operation="dotfile.create") == 5
    finally:
        harness.close()
