"""MemoryHook -> RedisHook -> OrmHook against a real redis-server, SQLite and PostgreSQL.

Every test taking ``store`` runs twice: on SQLite (a temporary data directory)
and on PostgreSQL (a fresh database of the fixture cluster). The runtimes are
real ``Runtime`` objects with the built-in ``db`` and ``redis`` plugins, each on
an isolated registry; SQL and Redis are inspected with raw statements and a raw
redis-py client, never through the hook under test.

Nothing here sleeps: a value another process (or hook) changed is waited for on
the hook's own change notices (``RedisHook.on_change``), with a bounded timeout.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from jaseci_like_services.db.service import DbService
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool

from jaseci_like import GlobError, MetaService, OrmHook, RedisHook, Runtime
from jaseci_like.hooks import glob_table
from jaseci_like.hooks.redis import CacheWrite
from jaseci_like.loop import RuntimeLoop
from jaseci_like.service import CommonService
from tests.procs import PROBE, ProbePlugin
from tests.servers import RedisServer

GLOBS_KEY = "jaseci_like:globs"
VERSION_KEY = "jaseci_like:globs:version"
#: A safety net for something another thread or process must do; not a measurement.
SEE_TIMEOUT = 10.0
#: Only the plugins under test load, so other services (their start time, their
#: failures) stay out of these tests.
ONLY_OUR_PLUGINS = {"JASECI_LIKE__PLUGINS__ALLOW": "db,redis,profiles,probe"}
#: For tests that count the statements a service runs: no periodic health checks.
#: Tests that count the statements on the engine run without the supervisor's probes
#: and without the cluster's heartbeat and lease writes.
NO_SUPERVISOR = {
    "JASECI_LIKE__RUNTIME__SUPERVISOR__ENABLED": "false",
    "JASECI_LIKE__RUNTIME__CLUSTER__ENABLED": "false",
}


def compact(value: Any) -> str:
    """The JSON text the hooks store for a dict (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- fixtures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """Where the db service keeps its tables: SQLite in a folder, or a PostgreSQL database."""

    kind: str
    env: dict[str, str]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store("sqlite", {"JASECI_LIKE__DB__DATA_DIR": str(tmp_path / "data")})
    url: str = request.getfixturevalue("postgres_url")
    return Store("postgresql", {"JASECI_LIKE__DB__URL": url})


@dataclass
class Runtimes:
    """Starts runtimes (each on its own registry) and stops them all afterwards."""

    started: list[Runtime] = field(default_factory=list)
    clients: list[redis.Redis] = field(default_factory=list)

    def start(
        self,
        store: Store,
        redis_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Runtime:
        """A runtime with the built-in plugins and ``probe``, started; Redis if a URL is given."""
        runtime = self.make(store, redis_url, env)
        # The listener's first subscription gives a notice ("*"): from then on this
        # runtime hears every change, so a test's first read is cached for good.
        subscribed = Changes(orm(runtime)) if redis_url is not None else None
        runtime.start()
        if subscribed is not None:
            assert subscribed.event.wait(SEE_TIMEOUT), "the config listener did not subscribe"
        return runtime

    def make(
        self,
        store: Store,
        redis_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Runtime:
        """The runtime :meth:`start` starts, not started yet (stopped afterwards)."""
        environ = {**ONLY_OUR_PLUGINS, **store.env}
        if redis_url is not None:
            environ["JASECI_LIKE__REDIS__ENABLED"] = "true"
            environ["JASECI_LIKE__REDIS__URL"] = redis_url
        environ.update(env or {})
        runtime = Runtime(
            environ=environ, meta=MetaService.isolated(), plugins={PROBE: ProbePlugin()}
        )
        self.started.append(runtime)
        return runtime

    def client(self, url: str) -> redis.Redis:
        """A raw client that fails fast like the redis service's (one immediate retry)."""
        client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 1)
        )
        self.clients.append(client)
        return client

    def close(self) -> None:
        for runtime in reversed(self.started):
            runtime.stop(timeout=10.0)
        for client in self.clients:
            client.close()


@pytest.fixture
def runtimes() -> Iterator[Runtimes]:
    made = Runtimes()
    yield made
    made.close()


@pytest.fixture
def raw_redis(redis_url: str, runtimes: Runtimes) -> redis.Redis:
    return runtimes.client(redis_url)


# -- helpers -------------------------------------------------------------------------------


def orm(runtime: Runtime) -> OrmHook:
    hook = runtime.hook
    assert isinstance(hook, OrmHook)
    return hook


def service(runtime: Runtime, name: str) -> CommonService:
    return runtime.hook.services[name]


def engine_of(runtime: Runtime) -> AsyncEngine:
    engine = service(runtime, "db").app
    assert isinstance(engine, AsyncEngine)
    return engine


def sql(runtime: Runtime, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one raw SQL statement in its own transaction on the runtime's database."""
    engine = engine_of(runtime)

    async def go() -> list[tuple[Any, ...]]:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []

    return runtime.meta.loop.run(go())


def sql_value(runtime: Runtime, name: str) -> str | None:
    rows = sql(runtime, "SELECT value FROM jaseci_like_globs WHERE name = :n", n=name)
    return rows[0][0] if rows else None


def hget(client: redis.Redis, name: str) -> str | None:
    raw = client.hget(GLOBS_KEY, name)
    return raw.decode() if isinstance(raw, bytes) else raw


def side_hook(runtime: Runtime, client: redis.Redis) -> OrmHook:
    """Another OrmHook on the same SQL and Redis, like one in another process, but with
    no listener until the test starts one (see :class:`Listening`)."""
    return OrmHook(engine=engine_of(runtime), loop=runtime.meta.loop, client=client)


class Changes:
    """The hook's change notices, so a test can wait for the next one."""

    def __init__(self, hook: RedisHook) -> None:
        self.event = threading.Event()
        self.names: list[str] = []
        hook.on_change(self._seen)

    def _seen(self, name: str) -> None:
        self.names.append(name)
        self.event.set()


def converges(
    hook: RedisHook, name: str, want: str | None, timeout: float = SEE_TIMEOUT
) -> str | None:
    """Read ``name`` again at each change notice until it is ``want`` or time is up;
    returns the last value read. No notice, no new read: staleness shows as a timeout."""
    changes = Changes(hook)
    deadline = time.monotonic() + timeout
    while True:
        changes.event.clear()
        seen = hook.get_glob(name)
        left = deadline - time.monotonic()
        if seen == want or left <= 0:
            return seen
        changes.event.wait(left)


class Listening:
    """A hook's pub/sub listener in a thread, as the redis service runs it."""

    def __init__(self, hook: RedisHook, client: redis.Redis) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=hook.listener(client), args=(self.stop,), daemon=True)

    def __enter__(self) -> Listening:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(SEE_TIMEOUT)
        assert not self.thread.is_alive(), "the listener did not stop"


# -- OrmHook: the three layers -------------------------------------------------------------


def test_read_through_finds_a_value_only_in_sql_then_serves_it_from_redis_and_memory(
    store: Store, runtimes: Runtimes, redis_url: str, raw_redis: redis.Redis
) -> None:
    runtime = runtimes.start(store, redis_url)
    hook = orm(runtime)
    sql(runtime, "INSERT INTO jaseci_like_globs (name, value) VALUES ('ONLY_SQL', '{\"a\": 1}')")
    assert hget(raw_redis, "ONLY_SQL") is None
    assert "ONLY_SQL" not in hook._globs

    assert hook.get_glob("ONLY_SQL") == '{"a": 1}'
    assert hget(raw_redis, "ONLY_SQL") == '{"a": 1}', "the read must repopulate Redis"
    assert hook._globs["ONLY_SQL"] == '{"a": 1}', "the read must fill memory"

    # Served from Redis: gone from SQL and from memory, still found.
    sql(runtime, "DELETE FROM jaseci_like_globs WHERE name = 'ONLY_SQL'")
    hook.forget("ONLY_SQL")
    assert hook.get_glob("ONLY_SQL") == '{"a": 1}'
    # Served from memory: gone from Redis too, still found.
    raw_redis.hdel(GLOBS_KEY, "ONLY_SQL")
    assert hook.get_glob("ONLY_SQL") == '{"a": 1}'
    assert hook.stored_glob("ONLY_SQL") == {"a": 1}


def test_write_through_lands_in_sql_redis_and_memory(
    store: Store, runtimes: Runtimes, redis_url: str, raw_redis: redis.Redis
) -> None:
    runtime = runtimes.start(store, redis_url)
    hook = orm(runtime)
    hook.save_glob("W", {"b": 2, "a": [1, 2]})
    want = compact({"a": [1, 2], "b": 2})
    assert sql_value(runtime, "W") == want
    assert hget(raw_redis, "W") == want
    assert hook._globs["W"] == want

    hook.save_glob("W", '{"b": 3}')  # JSON text is stored as given
    assert sql_value(runtime, "W") == '{"b": 3}'
    assert hget(raw_redis, "W") == '{"b": 3}'
    assert hook.get_glob("W") == '{"b": 3}'
    assert sql(runtime, "SELECT version FROM jaseci_like_globs WHERE name = 'W'") == [(2,)]

    with pytest.raises(GlobError, match="'W'"):
        hook.save_glob("W", "not json")
    assert sql_value(runtime, "W") == '{"b": 3}'
    assert hget(raw_redis, "W") == '{"b": 3}'
    assert hook.get_glob("W") == '{"b": 3}'


def test_destroy_glob_removes_every_layer_and_other_hooks_forget_it(
    store: Store, runtimes: Runtimes, redis_url: str, raw_redis: redis.Redis
) -> None:
    runtime = runtimes.start(store, redis_url)
    other = runtimes.start(store, redis_url)  # another runtime on the same SQL and Redis
    hook, other_hook = orm(runtime), orm(other)
    heard = Changes(other_hook)
    hook.save_glob("D", {"d": 1})
    # Once the notice of that save is handled, the other hook's read is cached.
    assert heard.event.wait(SEE_TIMEOUT)
    assert other_hook.get_glob("D") == '{"d":1}'
    assert other_hook._globs["D"] == '{"d":1}'

    hook.destroy_glob("D")
    assert sql_value(runtime, "D") is None
    assert hget(raw_redis, "D") is None
    assert "D" not in hook._globs
    assert hook.get_glob("D") is None
    assert not hook.has_glob("D")
    assert converges(other_hook, "D", None) is None, "the other hook still serves it"


def test_a_start_up_save_reaches_sql_even_if_memory_was_reset_before_attach(
    store: Store, runtimes: Runtimes, redis_url: str
) -> None:
    # The race behind a flaky list_glob: a glob saved while SQL is not attached yet
    # (memory and Redis only), then memory emptied (the Redis cache attaching resets
    # it) before the db service attaches SQL. attach_sql used to take the pending
    # values from memory, found none, and the value never became durable, while
    # Redis still served it (list_glob then named a glob SQL did not hold).
    runtime = runtimes.make(store, redis_url)
    hook = orm(runtime)
    hook.save_glob("BOOT_ONLY", {"early": True})
    assert not hook.durable
    hook.forget_all()
    runtime.open_store()
    assert hook.durable
    stored = {row[0]: row[1] for row in sql(runtime, "SELECT name, value FROM jaseci_like_globs")}
    assert stored.get("BOOT_ONLY") == '{"early":true}'
    assert set(hook.list_glob()) == set(stored)


def test_list_glob_names_only_what_sql_holds(store: Store, runtimes: Runtimes) -> None:
    runtime = runtimes.start(store)
    hook = orm(runtime)
    hook._globs["ONLY_IN_MEMORY"] = "{}"  # a copy no store holds (stale, or not yet written)
    assert "ONLY_IN_MEMORY" not in hook.list_glob()
    assert set(hook.list_glob()) == {
        row[0] for row in sql(runtime, "SELECT name FROM jaseci_like_globs")
    }


def test_list_glob_names_every_layer(
    store: Store, runtimes: Runtimes, redis_url: str, raw_redis: redis.Redis
) -> None:
    runtime = runtimes.start(store, redis_url)
    hook = orm(runtime)
    hook.save_glob("L_A", {"x": 1})
    hook.save_glob("L_B", [1, 2])
    sql(runtime, "INSERT INTO jaseci_like_globs (name, value) VALUES ('L_SQL', '{}')")
    names = hook.list_glob()
    assert {"L_A", "L_B", "L_SQL"} <= set(names)
    assert names == sorted(names)
    assert set(names) == {row[0] for row in sql(runtime, "SELECT name FROM jaseci_like_globs")}

    hook.destroy_glob("L_A")
    assert "L_A" not in hook.list_glob()
    assert {"L_B", "L_SQL"} <= set(hook.list_glob())


def test_a_second_hook_sees_what_the_first_saved(
    store: Store, runtimes: Runtimes, redis_url: str
) -> None:
    first = runtimes.start(store, redis_url)
    second = runtimes.start(store, redis_url)
    heard = Changes(orm(second))
    orm(first).save_glob("SHARED", {"v": 1})
    assert heard.event.wait(SEE_TIMEOUT)
    assert orm(second).get_glob("SHARED") == '{"v":1}'
    assert orm(second)._globs["SHARED"] == '{"v":1}'
    orm(first).save_glob("SHARED", {"v": 2})
    assert converges(orm(second), "SHARED", '{"v":2}') == '{"v":2}'


# -- RedisHook alone -----------------------------------------------------------------------


def test_redis_hook_alone_reads_and_writes_through_the_hash(
    runtimes: Runtimes, redis_url: str, raw_redis: redis.Redis
) -> None:
    hook = RedisHook(client=runtimes.client(redis_url))
    other = RedisHook(client=runtimes.client(redis_url))
    raw_redis.hset(GLOBS_KEY, "R_ONLY", '{"r": 1}')
    assert hook.get_glob("R_ONLY") == '{"r": 1}'
    assert hook._globs["R_ONLY"] == '{"r": 1}'

    hook.save_glob("R_W", {"w": 1})
    assert hget(raw_redis, "R_W") == '{"w":1}'
    assert hook._globs["R_W"] == '{"w":1}'
    assert other.get_glob("R_W") == '{"w":1}'
    assert set(other.list_glob()) == {"R_ONLY", "R_W"}

    # A change reaches the other hook through its listener.
    changes = Changes(other)
    with Listening(other, runtimes.client(redis_url)):
        # Subscribing drops what was read before (it may have missed changes).
        assert changes.event.wait(SEE_TIMEOUT), "no notice when the listener subscribed"
        assert "R_W" not in other._globs
        assert other.get_glob("R_W") == '{"w":1}'
        changes.event.clear()
        hook.save_glob("R_W", {"w": 2})
        assert changes.event.wait(SEE_TIMEOUT), "the other hook got no change notice"
        assert other.get_glob("R_W") == '{"w":2}'

    hook.destroy_glob("R_W")
    assert hget(raw_redis, "R_W") is None
    assert hook.get_glob("R_W") is None
    assert hook.list_glob() == ["R_ONLY"]


def test_redis_hook_without_redis_is_a_memory_hook() -> None:
    hook = RedisHook()  # no client and no registry: nothing to reach
    assert hook.get_glob("NONE") is None
    hook.save_glob("M", {"m": 1})
    assert hook.get_glob("M") == '{"m":1}'
    assert hook.list_glob() == ["M"]
    hook.destroy_glob("M")
    assert hook.get_glob("M") is None


# -- a lower layer that is not there ---------------------------------------------------------


def test_glob_read_while_the_db_service_is_not_running_falls_back(
    store: Store, runtimes: Runtimes, redis_url: str, raw_redis: redis.Redis
) -> None:
    runtime = runtimes.start(store, redis_url)
    hook = orm(runtime)
    hook.save_glob("BEFORE", {"b": 1})
    db = service(runtime, "db")
    db.stop()
    assert not db.is_running()
    assert not hook.durable

    hook.forget("BEFORE")
    assert hook.get_glob("BEFORE") == '{"b":1}', "Redis must serve it"
    assert hook.get_glob("ABSENT") is None
    hook.save_glob("WHILE_DOWN", {"w": 1})
    assert hook.get_glob("WHILE_DOWN") == '{"w":1}'
    assert hget(raw_redis, "WHILE_DOWN") == '{"w":1}'
    assert {"BEFORE", "WHILE_DOWN"} <= set(hook.list_glob())

    # The db service back: what was saved meanwhile reaches SQL.
    db.reset(hook)
    assert db.is_running()
    assert hook.durable
    assert sql_value(runtime, "WHILE_DOWN") == '{"w":1}'
    assert hook.get_glob("BEFORE") == '{"b":1}'


def test_reads_and_writes_keep_working_while_redis_is_down(
    store: Store, runtimes: Runtimes, redis_server_restartable: RedisServer
) -> None:
    server = redis_server_restartable
    runtime = runtimes.start(store, server.url)
    hook = orm(runtime)
    hook.save_glob("KEPT", {"k": 1})
    hook.save_glob("CHANGED", {"c": 1})
    assert hook.get_glob("KEPT") == '{"k":1}'

    server.kill()
    hook.forget("KEPT")
    assert hook.get_glob("KEPT") == '{"k":1}', "SQL must serve it"
    hook.save_glob("CHANGED", {"c": 2})
    assert hook.get_glob("CHANGED") == '{"c":2}'
    assert sql_value(runtime, "CHANGED") == '{"c":2}'
    hook.save_glob("NEW", {"n": 1})
    assert sql_value(runtime, "NEW") == '{"n":1}'
    assert {"KEPT", "CHANGED", "NEW"} <= set(hook.list_glob())
    hook.destroy_glob("NEW")
    assert sql_value(runtime, "NEW") is None
    assert hook.get_glob("NEW") is None

    rows = {row.name: row for row in runtime.status()}
    assert rows["redis"].healthy is not True  # RUNNING and failing, or FAILED (supervisor)
    assert rows["redis"].error
    assert rows["db"].healthy is True


def test_no_stale_value_after_redis_comes_back(
    store: Store, runtimes: Runtimes, redis_server_restartable: RedisServer
) -> None:
    server = redis_server_restartable
    writer = runtimes.start(store, server.url)
    reader = runtimes.start(store, server.url)
    orm(writer).save_glob("G", {"v": 1})
    assert orm(reader).get_glob("G") == '{"v":1}'  # cached by the reader

    server.kill()
    orm(writer).save_glob("G", {"v": 2})  # SQL only
    assert sql_value(writer, "G") == '{"v":2}'
    server.start()  # the same port, empty

    assert orm(writer).get_glob("G") == '{"v":2}'
    fresh = runtimes.start(store, server.url)
    assert orm(fresh).get_glob("G") == '{"v":2}'
    assert converges(orm(reader), "G", '{"v":2}') == '{"v":2}', (
        "the reader still serves the value from before the outage"
    )
    client = runtimes.client(server.url)
    assert hget(client, "G") in (None, '{"v":2}')


# -- the listener catches up on what it missed ---------------------------------------------


def test_changes_made_before_the_first_subscription_are_not_served_stale(
    store: Store, runtimes: Runtimes, redis_url: str
) -> None:
    runtime = runtimes.start(store, redis_url)
    writer = orm(runtime)
    client = runtimes.client(redis_url)
    reader = side_hook(runtime, client)  # like a process whose listener has not subscribed yet
    writer.save_glob("S", {"v": 1})
    assert reader.get_glob("S") == '{"v":1}'
    writer.save_glob("S", {"v": 2})  # the reader is not subscribed: it misses the message

    with Listening(reader, runtimes.client(redis_url)):
        assert converges(reader, "S", '{"v":2}') == '{"v":2}'


def test_own_writes_do_not_hide_missed_changes(
    store: Store, runtimes: Runtimes, redis_url: str
) -> None:
    runtime = runtimes.start(store, redis_url)
    writer = orm(runtime)
    client = runtimes.client(redis_url)
    reader = side_hook(runtime, client)
    writer.save_glob("S", {"v": 1})
    reader.catch_up(client)  # as a listener does on subscribing
    assert reader.get_glob("S") == '{"v":1}'
    # The reader's listener is away (reconnecting): it misses the writer's change,
    # then announces a change of its own.
    writer.save_glob("S", {"v": 2})
    reader.save_glob("MINE", {"m": 1})

    with Listening(reader, runtimes.client(redis_url)):
        assert converges(reader, "S", '{"v":2}') == '{"v":2}'


def test_a_restarted_redis_is_not_mistaken_for_the_old_one(
    store: Store, runtimes: Runtimes, redis_server_restartable: RedisServer
) -> None:
    """After a restart the version counter starts again; when it happens to reach the
    number a process saw before, that process must still notice it missed changes."""
    server = redis_server_restartable
    runtime = runtimes.start(store, server.url)
    writer = side_hook(runtime, runtimes.client(server.url))
    writer.retry_interval = 0.0  # try Redis again at once after a failure
    reader_client = runtimes.client(server.url)
    reader = side_hook(runtime, reader_client)

    writer.save_glob("E", {"v": 1})
    reader.catch_up(reader_client)
    assert reader.get_glob("E") == '{"v":1}'
    seen = runtimes.client(server.url).get(VERSION_KEY)
    assert seen is not None

    server.kill()
    writer.save_glob("E", {"v": 2})  # SQL only
    server.start()
    assert writer.get_glob("OTHER") is None  # Redis answers: the writer resynchronizes (1)
    for n in range(int(seen) - 1):  # as many changes as before, before the reader is back
        writer.save_glob("PAD", {"n": n})
    assert runtimes.client(server.url).get(VERSION_KEY) == seen, "the setup needs equal counters"

    with Listening(reader, runtimes.client(server.url)):
        assert converges(reader, "E", '{"v":2}') == '{"v":2}'


def test_concurrent_writers_leave_the_cache_agreeing_with_sql(
    store: Store, runtimes: Runtimes, redis_url: str, raw_redis: redis.Redis
) -> None:
    """A writer whose SQL write committed first but whose cache write lands last must not
    leave its older value in Redis while SQL holds the newer one."""
    runtime = runtimes.start(store, redis_url)

    class PausedAfterSql(OrmHook):
        committed = threading.Event()
        proceed = threading.Event()

        def _store_lower(self, name: str, text: str, cache: CacheWrite) -> None:
            super()._store_lower(name, text, cache)
            type(self).committed.set()
            assert type(self).proceed.wait(SEE_TIMEOUT)

    slow = PausedAfterSql(
        engine=engine_of(runtime), loop=runtime.meta.loop, client=runtimes.client(redis_url)
    )
    fast = orm(runtime)
    worker = threading.Thread(target=slow.save_glob, args=("RACE", {"v": "slow"}))
    worker.start()
    try:
        assert PausedAfterSql.committed.wait(SEE_TIMEOUT)
        fast.save_glob("RACE", {"v": "fast"})  # commits after the slow writer's commit
    finally:
        PausedAfterSql.proceed.set()
        worker.join(SEE_TIMEOUT)
    durable = sql_value(runtime, "RACE")
    assert durable == '{"v":"fast"}'
    fresh = side_hook(runtime, runtimes.client(redis_url))
    assert (hget(raw_redis, "RACE"), fresh.get_glob("RACE")) == (durable, durable), (
        "Redis serves a value older than the one SQL holds: the cache write of a "
        "slower writer landed after a newer write"
    )


# -- the db service ------------------------------------------------------------------------


def test_the_migration_creates_exactly_the_table_glob_table_defines(
    store: Store, runtimes: Runtimes
) -> None:
    runtime = runtimes.start(store)
    engine = engine_of(runtime)

    def compare(connection: Any) -> tuple[list[Any], list[dict[str, Any]], list[str]]:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext
        from sqlalchemy import inspect

        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = [
            d
            for d in compare_metadata(context, glob_table.metadata)
            if glob_table.globs.name in repr(d)
        ]
        inspector = inspect(connection)
        columns = inspector.get_columns(glob_table.globs.name)
        primary = inspector.get_pk_constraint(glob_table.globs.name)["constrained_columns"]
        return diffs, columns, primary

    async def go() -> tuple[list[Any], list[dict[str, Any]], list[str]]:
        conn: AsyncConnection
        async with engine.connect() as conn:
            return await conn.run_sync(compare)

    diffs, columns, primary = runtime.meta.loop.run(go())
    assert diffs == []
    assert [(c["name"], c["nullable"]) for c in columns] == [
        (c.name, c.nullable) for c in glob_table.globs.columns
    ]
    assert primary == [c.name for c in glob_table.globs.primary_key.columns]


def test_db_health_runs_select_1_and_stop_disposes_the_engine(
    store: Store, runtimes: Runtimes
) -> None:
    runtime = runtimes.start(store, env=NO_SUPERVISOR)
    db = service(runtime, "db")
    engine = engine_of(runtime)
    statements: list[str] = []
    closed: list[object] = []
    disposed: list[object] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    event.listen(engine.sync_engine.pool, "close", lambda *a: closed.append(a))
    event.listen(engine.sync_engine, "engine_disposed", disposed.append)
    assert db.health() is True
    assert statements == ["SELECT 1"]  # no transaction: a ping never waits for writers
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    pooled = pool.checkedin()
    assert pooled >= 1

    db.stop()
    assert db.state.name == "STOPPED"
    assert db.app is None
    assert disposed == [engine.sync_engine]
    assert len(closed) == pooled, "every pooled connection must be closed"


# -- SQLite: serialized writers ----------------------------------------------------------------


@pytest.fixture
def sqlite_runtime(tmp_path: Path, runtimes: Runtimes) -> Runtime:
    store = Store("sqlite", {"JASECI_LIKE__DB__DATA_DIR": str(tmp_path / "data")})
    return runtimes.start(store, env=NO_SUPERVISOR)


def test_sqlite_transactions_begin_immediate(sqlite_runtime: Runtime) -> None:
    engine = engine_of(sqlite_runtime)
    statements: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.strip().upper())

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    sql(sqlite_runtime, "SELECT count(*) FROM jaseci_like_globs")
    orm(sqlite_runtime).save_glob("T", {"t": 1})
    assert statements.count("BEGIN IMMEDIATE") == 2
    assert statements[0] == "BEGIN IMMEDIATE"


def test_sqlite_reader_opens_no_transaction_and_never_waits_for_a_writer(
    sqlite_runtime: Runtime,
) -> None:
    db = service(sqlite_runtime, "db")
    assert isinstance(db, DbService)
    engine, reader = engine_of(sqlite_runtime), db.reader
    assert reader is db.reader, "one view per engine"
    sql(sqlite_runtime, "CREATE TABLE seen (n INTEGER NOT NULL)")
    sql(sqlite_runtime, "INSERT INTO seen (n) VALUES (1)")
    statements: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.strip().upper())

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)

    async def read_while_a_writer_holds_the_lock() -> list[int]:
        async with engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock, held
            await writer.execute(text("INSERT INTO seen (n) VALUES (2)"))
            async with reader.connect() as conn:  # would wait busy_timeout on app
                rows = await conn.execute(text("SELECT n FROM seen ORDER BY n"))
                return [int(n) for (n,) in rows]

    loop: RuntimeLoop = sqlite_runtime.meta.loop
    assert loop.run(read_while_a_writer_holds_the_lock(), timeout=5.0) == [1]
    assert statements.count("BEGIN IMMEDIATE") == 1, statements
    assert "BEGIN" not in statements
    assert sql(sqlite_runtime, "SELECT n FROM seen ORDER BY n") == [(1,), (2,)]


def test_db_health_answers_while_another_connection_holds_the_write_lock(
    sqlite_runtime: Runtime,
) -> None:
    db = service(sqlite_runtime, "db")
    database = engine_of(sqlite_runtime).url.database
    assert database is not None
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # a writer in the middle of its transaction
        other.execute("CREATE TABLE held (n INTEGER)")
        assert db.health() is True  # busy is not down: nothing to restart
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_sqlite_read_modify_write_transactions_are_serialized(sqlite_runtime: Runtime) -> None:
    threads, rounds = 8, 25
    engine = engine_of(sqlite_runtime)
    loop: RuntimeLoop = sqlite_runtime.meta.loop
    sql(sqlite_runtime, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    sql(sqlite_runtime, "INSERT INTO counter (id, n) VALUES (1, 0)")

    async def increment() -> None:
        async with engine.begin() as conn:
            n = (await conn.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one()
            await conn.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})

    def work(_: int) -> None:
        for _round in range(rounds):
            loop.run(increment())

    with ThreadPoolExecutor(threads) as pool:
        for result in [pool.submit(work, i) for i in range(threads)]:
            result.result()  # "database is locked" would be raised here
    assert sql(sqlite_runtime, "SELECT n FROM counter WHERE id = 1") == [(threads * rounds,)]
