"""Reads of SQLite file databases on the loop (the reader the db service pairs with each
engine), their fall-back to aiosqlite, and the change stamp caches rely on."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.loop import RuntimeLoop
from jaseci_like.repository import (
    Creator,
    DbOps,
    ReaderBusy,
    UtcDateTime,
    reader_of,
)
from tests.group_config_fixtures import BeginCounter, make_engine, sqlite_url

T = TypeVar("T")
WAIT = 30.0
meta = MetaData()
items = Table(
    "rd_items",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=True),
)


@dataclass
class Sqlite:
    path: Path
    loop: RuntimeLoop
    engine: AsyncEngine
    ops: DbOps

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro, timeout=WAIT)

    def count(self) -> int:
        async def read() -> int:
            async with self.ops.read_ops() as r:
                return int((await r.execute(select(func.count()).select_from(items))).scalar_one())

        return self.run(read())

    def add(self, *ids: int) -> None:
        async def write() -> None:
            async with self.ops.write_ops() as w:
                for id_ in ids:
                    await w.create(Creator(items, {"id": id_, "at": None}))

        self.run(write())


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Sqlite]:
    url = sqlite_url(tmp_path)
    loop = RuntimeLoop("reader-test")
    engine = make_engine(url, busy_timeout_ms=10_000)

    async def create() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)

    loop.run(create())
    try:
        yield Sqlite(tmp_path / "group_config.db", loop, engine, DbOps(engine))
    finally:
        loop.run(engine.dispose())
        loop.stop()


def test_a_file_database_gets_a_reader_and_a_stamp_and_memory_gets_neither(
    sqlite_db: Sqlite,
) -> None:
    assert reader_of(sqlite_db.engine) is not None
    assert sqlite_db.ops.change_stamp() is not None
    loop = RuntimeLoop("reader-memory")
    memory = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        assert reader_of(memory) is None
        assert DbOps(memory).change_stamp() is None
    finally:
        loop.run(memory.dispose())
        loop.stop()


def test_reads_go_through_the_reader_in_one_transaction(sqlite_db: Sqlite) -> None:
    sqlite_db.add(1, 2)
    reads = BeginCounter(sqlite_db.engine)
    writes: list[object] = []

    def on_write_begin(conn: Any) -> None:
        writes.append(conn)

    event.listen(sqlite_db.engine.sync_engine, "begin", on_write_begin)
    try:
        assert sqlite_db.count() == 2
    finally:
        reads.close()
        event.remove(sqlite_db.engine.sync_engine, "begin", on_write_begin)
    assert reads.count == 1 and writes == [], "the read opened a transaction of the async engine"


def test_a_read_does_not_wait_for_a_writer_and_sees_only_committed_rows(
    sqlite_db: Sqlite,
) -> None:
    sqlite_db.add(1)
    writer = sqlite3.connect(sqlite_db.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the write lock, held through the read
        writer.execute("INSERT INTO rd_items (id) VALUES (2)")
        # Reads used to take BEGIN IMMEDIATE too and wait up to the busy timeout (10 s).
        assert sqlite_db.loop.run(_count(sqlite_db), timeout=2.0) == 1
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert sqlite_db.count() == 2


async def _count(db: Sqlite) -> int:
    async with db.ops.read_ops() as r:
        return int((await r.execute(select(func.count()).select_from(items))).scalar_one())


def test_a_busy_reader_hands_the_read_to_aiosqlite_and_the_loop_keeps_running(
    sqlite_db: Sqlite,
) -> None:
    """The reader raises ReaderBusy when it cannot take its snapshot at once (its begin
    event turns SQLITE_BUSY into it); here a listener raises it, and the async engine
    must serve the read, off the loop, while a writer still holds the lock."""
    sqlite_db.add(1)
    reader = reader_of(sqlite_db.engine)
    assert reader is not None
    busy = threading.Event()
    busy.set()

    def refuse(conn: Any) -> None:
        if busy.is_set():
            raise ReaderBusy("test: the snapshot is not available")

    handed_over = threading.Event()
    event.listen(reader, "begin", refuse, insert=True)
    # A connection of the async engine's pool taken: the read went there.
    event.listen(sqlite_db.engine.sync_engine, "checkout", lambda *_: handed_over.set())
    writer = sqlite3.connect(sqlite_db.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO rd_items (id) VALUES (2)")
        future = sqlite_db.loop.submit(_count(sqlite_db))
        if not handed_over.wait(WAIT):
            raise AssertionError(f"the read never reached the async engine: {future.exception()!r}")
        # aiosqlite's thread waits for the write lock (BEGIN IMMEDIATE); the loop does not.
        assert sqlite_db.run(asyncio.sleep(0, result="free")) == "free"
        assert not future.done()
        writer.execute("COMMIT")
        assert future.result(WAIT) == 2
    finally:
        writer.close()
    busy.clear()
    assert sqlite_db.count() == 2  # the reader's connection came back usable


def test_the_reader_refuses_to_write(sqlite_db: Sqlite) -> None:
    async def sneak() -> None:
        async with sqlite_db.ops.read_ops() as r:
            await r.execute(insert(items).values(id=9))

    with pytest.raises(OperationalError, match="readonly"):
        sqlite_db.run(sneak())
    assert sqlite_db.count() == 0


def test_the_change_stamp_moves_on_every_commit_of_any_connection_or_process(
    sqlite_db: Sqlite,
) -> None:
    stamp = sqlite_db.ops.change_stamp
    first = stamp()
    sqlite_db.count()  # reads commit nothing
    assert stamp() == first
    sqlite_db.add(1)  # the async engine's own commit
    second = stamp()
    assert second != first
    # Another process commits.
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('PRAGMA busy_timeout=10000'); "
        "c.execute('INSERT INTO rd_items (id) VALUES (2)'); c.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(sqlite_db.path)], check=True, timeout=WAIT)
    third = stamp()
    assert third not in (first, second)
    # A rolled-back write is no commit.
    writer = sqlite3.connect(sqlite_db.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO rd_items (id) VALUES (3)")
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert stamp() == third


def test_the_change_stamp_under_threads_never_misses_a_commit(sqlite_db: Sqlite) -> None:
    """Threads read the stamp while another commits: each sees every commit that ended
    before its read (never an old stamp after a commit it waited for)."""
    stamp = sqlite_db.ops.change_stamp
    commits = 40
    done = threading.Event()
    errors: list[str] = []

    def watch() -> None:
        while not done.is_set():
            if stamp() is None:
                errors.append("no stamp")

    watchers = [threading.Thread(target=watch) for _ in range(4)]
    for thread in watchers:
        thread.start()
    writer = sqlite3.connect(sqlite_db.path, isolation_level=None)
    try:
        writer.execute("PRAGMA busy_timeout=10000")
        seen = {stamp()}
        for n in range(commits):
            writer.execute("INSERT INTO rd_items (id) VALUES (?)", (n,))
            now = stamp()
            assert now not in seen, f"commit {n}: the stamp did not move"
            seen.add(now)
    finally:
        done.set()
        for thread in watchers:
            thread.join(WAIT)
        writer.close()
    assert errors == []


def test_utc_datetimes_from_sqlite_text_come_back_aware_in_utc(sqlite_db: Sqlite) -> None:
    moments = [
        dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
        dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ]

    async def scenario() -> list[Any]:
        async with sqlite_db.ops.write_ops() as w:
            for n, moment in enumerate(moments):
                await w.create(Creator(items, {"id": n, "at": moment}))
            # Text another program wrote: with an offset, and none at all.
            await w.execute(text("INSERT INTO rd_items VALUES (7, '2030-01-02 03:04:05+02:00')"))
            await w.execute(text("INSERT INTO rd_items VALUES (8, NULL)"))
        async with sqlite_db.ops.read_ops() as r:
            return [row.at for row in await r.execute(select(items).order_by(items.c.id))]

    got = sqlite_db.run(scenario())
    assert got == [*moments, dt.datetime(2030, 1, 2, 1, 4, 5, tzinfo=dt.UTC), None]
    assert all(value.tzinfo is dt.UTC for value in got if value is not None)
