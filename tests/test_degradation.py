"""Graceful degradation: the database stops under a stream of writes and comes back.

Real servers only: a PostgreSQL cluster of this module's own (the test stops it
with ``pg_ctl stop -m immediate``, a crash, and starts it again on the same port
and data directory) and ``redis-server``. Nothing sleeps to synchronize: the
writer thread reports every outcome through a condition the test waits on.

What a write may end as while the database is down: committed (acknowledged), or
refused with the typed, retriable ``DatabaseUnavailable`` (code
``database_unavailable``, HTTP 503), which promises that nothing was written. A
connection lost *while committing* cannot promise that: it is reported as
``CommitOutcomeUnknown`` (a subclass, code ``commit_outcome_unknown``,
``committed`` None) and is never retried blindly; the caller reads back. So the
rows afterwards are exactly the acknowledged writes, plus possibly writes that
were reported as unknown, and never a write that was reported as not done.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from jaseci_like_services.group_config import (
    CurrentUser,
    DotfileNotFound,
    DotfileSpec,
    GroupConfig,
)
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from jaseci_like import ConfigApi, MetaService, Runtime, StoreUnavailable
from jaseci_like.loop import RuntimeLoop
from jaseci_like.repository import CommitOutcomeUnknown, DatabaseUnavailable, RetryPolicy
from tests.group_config_fixtures import ROOT, Harness, make_engine, open_harness
from tests.servers import PostgresServer, RedisServer, ServerMissing, free_port

#: Safety net for the writer to reach a point; not a measurement.
REACH_TIMEOUT = 60.0
#: A write refused while the server is down must come back at least this fast
#: (the connection is refused at once; the retries add a few tens of ms).
FAIL_FAST = 2.0
#: Any call: the db's connect_timeout plus group_config's retry max_total (defaults).
CALL_BOUND = 5.0 + 5.0
WRITES_BEFORE = 20
FAILURES_DURING = 10
WRITES_AFTER = 20
PERMISSION = "600"

OK, UNAVAILABLE, UNKNOWN, OTHER = "ok", "unavailable", "unknown", "other"


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster this test alone may stop and start (the session one is shared)."""
    try:
        server = PostgresServer()
    except ServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    with server:
        yield server


@dataclass(frozen=True)
class Outcome:
    index: int
    path: str
    kind: str
    seconds: float
    error: BaseException | None


@dataclass
class WriteStream:
    """A thread creating ``.stream/<n>`` dotfiles one after another, recording each
    call's outcome; the test waits on :meth:`wait_until`."""

    app: GroupConfig
    group_id: Any
    actor: CurrentUser
    outcomes: list[Outcome] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @staticmethod
    def data_of(index: int) -> str:
        return f"write {index}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="write-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        api = self.app.sync
        for index in itertools.count():
            if self._stop.is_set():
                return
            path = f".stream/{index:05d}"
            error: BaseException | None = None
            began = time.monotonic()
            try:
                api.dotfiles.create(
                    self.group_id,
                    DotfileSpec(path, self.data_of(index), PERMISSION),
                    user=self.actor,
                )
            except CommitOutcomeUnknown as exc:
                kind, error = UNKNOWN, exc
            except DatabaseUnavailable as exc:
                kind, error = UNAVAILABLE, exc
            except BaseException as exc:  # recorded: the test fails on any of these
                kind, error = OTHER, exc
            else:
                kind = OK
            with self._changed:
                self.outcomes.append(Outcome(index, path, kind, time.monotonic() - began, error))
                self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self.outcomes)

    def wait_until(self, what: str, done: Callable[[list[Outcome]], bool]) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: done(self.outcomes), REACH_TIMEOUT):
                kinds = [o.kind for o in self.outcomes[-20:]]
                raise AssertionError(f"the writer did not reach {what!r}; last outcomes {kinds}")

    def count(self, kind: str, since: int = 0) -> Callable[[list[Outcome]], int]:
        return lambda outcomes: sum(o.kind == kind for o in outcomes[since:])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(REACH_TIMEOUT)
            assert not self._thread.is_alive(), "the writer hung in a call"


def start_runtime(url: str, extra: dict[str, str] | None = None) -> Runtime:
    """db on ``url`` and group_config; no supervisor, so nothing restarts any service."""
    environ = {
        "JASECI_LIKE__PLUGINS__ALLOW": "db,group_config,redis,profiles",
        "JASECI_LIKE__DB__URL": url,
        "JASECI_LIKE__RUNTIME__SUPERVISOR__ENABLED": "false",
        # The stream writes more dotfiles than a group may hold by default.
        "JASECI_LIKE__GROUP_CONFIG__MAX_DOTFILES": "100000",
        "JASECI_LIKE__GROUP_CONFIG__MAX_BYTES": "100000000",
        **(extra or {}),
    }
    runtime = Runtime(environ=environ, meta=MetaService.isolated())
    try:
        runtime.start()
    except BaseException:
        runtime.stop(timeout=10.0)
        raise
    return runtime


def stored_dotfiles(
    server: PostgresServer, database: str, group_id: Any
) -> dict[str, tuple[str, ...]]:
    """path -> (data, permission, status) of every row of the group, read with psql."""
    out = server.psql(
        "SELECT path, data, permission, status FROM gc_dotfiles "
        f"WHERE group_id = '{group_id}' ORDER BY id",
        dbname=database,
    )
    rows: dict[str, tuple[str, ...]] = {}
    for line in out.splitlines():
        path, *rest = line.split("|")
        assert path not in rows, f"two rows for {path}"
        rows[path] = tuple(rest)
    return rows


def test_postgres_stopped_immediately_during_a_write_stream_and_started_again(
    own_postgres: PostgresServer,
) -> None:
    pg = own_postgres
    database = "degradation"
    runtime = start_runtime(pg.create_database(database))
    stream: WriteStream | None = None
    try:
        service = runtime.hook.services["group_config"]
        app = service.app
        assert isinstance(app, GroupConfig)
        actor = app.system_user()
        group = app.sync.groups.create("stream", user=actor)
        stream = WriteStream(app, group.id, actor)
        stream.start()
        stream.wait_until("writes before the stop", lambda o: stream.count(OK)(o) >= WRITES_BEFORE)

        pg.stop(mode="immediate")
        down = stream.mark()
        stream.wait_until(
            "refusals while down",
            lambda o: stream.count(UNAVAILABLE, down)(o) >= FAILURES_DURING,
        )
        during = {row.name: row for row in runtime.status()}
        assert during["db"].healthy is False, during["db"]
        assert during["db"].error, "status must say why the db is unhealthy"
        config_while_down(ConfigApi(runtime.hook))

        pg.start()
        up = stream.mark()
        stream.wait_until(
            "writes after the restart", lambda o: stream.count(OK, up)(o) >= WRITES_AFTER
        )
        stream.stop()

        # Recovered in the same process, with the same service and app: nothing restarted.
        assert runtime.hook.services["group_config"] is service
        assert service.app is app and service.is_running()
        assert {row.name: row.healthy for row in runtime.status()}["db"] is True
        config_when_back(ConfigApi(runtime.hook), pg, database)
        usage = app.sync.dotfiles.usage(group.id, user=actor)
    finally:
        if stream is not None:
            stream.stop()
        runtime.stop(timeout=10.0)

    rows = stored_dotfiles(pg, database, group.id)
    check_outcomes(stream.outcomes, rows)
    assert usage.count == len(rows)


def config_while_down(config: ConfigApi) -> None:
    """Config is still read (from memory); a change is refused, typed, and not kept."""
    assert config.config_get("group_config")["retry"]["attempts"] == 4
    began = time.monotonic()
    with pytest.raises(StoreUnavailable, match="nothing was changed"):
        config.config_set("group_config", {"retry": {"attempts": 7}})
    assert time.monotonic() - began < FAIL_FAST
    assert config.config_get("group_config")["retry"]["attempts"] == 4


def config_when_back(config: ConfigApi, pg: PostgresServer, database: str) -> None:
    """The config store takes changes again, on the same engine, durably."""
    config.config_set("group_config", {"retry": {"attempts": 7}})
    stored = pg.psql(
        "SELECT value FROM jaseci_like_globs WHERE name = 'GROUP_CONFIG_CONFIG'", dbname=database
    )
    assert '"attempts":7' in stored.replace(" ", ""), stored


def check_outcomes(outcomes: list[Outcome], rows: dict[str, tuple[str, ...]]) -> None:
    """Every call typed and bounded; the rows exactly the acknowledged writes, each whole."""
    others = [o for o in outcomes if o.kind == OTHER]
    assert not others, f"untyped failures: {[(o.path, repr(o.error)) for o in others[:5]]}"
    for outcome in outcomes:
        assert outcome.seconds < CALL_BOUND, f"{outcome.path} took {outcome.seconds:.2f}s"
        if outcome.kind == OK:
            continue
        error = outcome.error
        assert isinstance(error, DatabaseUnavailable)
        assert error.code in ("database_unavailable", "commit_outcome_unknown")
        assert error.http_status == 503
        assert error.retriable is True
        assert error.retry_after > 0
        assert "unavailable" in str(error) or "may or may not" in str(error)
        assert outcome.seconds < FAIL_FAST, f"{outcome.path} took {outcome.seconds:.2f}s to fail"

    acknowledged = {o.path for o in outcomes if o.kind == OK}
    refused = {o.path for o in outcomes if o.kind == UNAVAILABLE}
    unknown = {o.path for o in outcomes if o.kind == UNKNOWN}
    assert len(refused) >= FAILURES_DURING
    assert acknowledged <= rows.keys(), f"acknowledged, lost: {sorted(acknowledged - rows.keys())}"
    assert not refused & rows.keys(), f"refused, written: {sorted(refused & rows.keys())}"
    assert rows.keys() == acknowledged | (unknown & rows.keys())
    index_of = {o.path: o.index for o in outcomes}
    for path, row in rows.items():
        assert row == (WriteStream.data_of(index_of[path]), PERMISSION, "active"), path
    print(
        f"write stream: {len(acknowledged)} acknowledged, {len(refused)} refused, "
        f"{len(unknown)} unknown ({len(unknown & rows.keys())} of them committed); "
        f"slowest refusal {max(o.seconds for o in outcomes if o.kind != OK):.3f}s"
    )


def test_a_connection_lost_while_committing_is_reported_as_unknown_and_not_retried(
    postgres_url: str,
) -> None:
    # A deferred trigger runs inside COMMIT; this one ends its own backend there, so
    # the client loses the connection with the COMMIT sent and no answer to it.
    harness: Harness = open_harness("postgres", postgres_url)
    try:

        async def install() -> None:
            async with harness.engine.begin() as conn:
                await conn.execute(
                    text(
                        "CREATE FUNCTION lose_connection() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); "
                        "PERFORM pg_sleep(10); RETURN NULL; END $$"
                    )
                )
                await conn.execute(
                    text(
                        "CREATE CONSTRAINT TRIGGER lose_connection AFTER INSERT ON gc_dotfiles "
                        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                        "WHEN (NEW.path = '.lost-at-commit') EXECUTE FUNCTION lose_connection()"
                    )
                )

        harness.run(install())
        api = harness.app.sync
        api.domains.create(ROOT.domain, user=ROOT)
        group = api.groups.create("commit", user=ROOT)
        began = time.monotonic()
        with pytest.raises(CommitOutcomeUnknown) as caught:
            api.dotfiles.create(group.id, DotfileSpec(".lost-at-commit", "x"), user=ROOT)
        assert time.monotonic() - began < FAIL_FAST
        error = caught.value
        assert (error.code, error.http_status, error.committed) == (
            "commit_outcome_unknown",
            503,
            None,
        )
        assert "read it back" in str(error)
        metrics = harness.app.metrics
        assert metrics.value("attempts_total", operation="dotfile.create") == 1, "retried blindly"
        assert (
            metrics.value(
                "operations_total", operation="dotfile.create", outcome="commit_outcome_unknown"
            )
            == 1
        )
        # Reading back settles it (here the backend ended before the commit record).
        with pytest.raises(DotfileNotFound):
            api.dotfiles.get(group.id, ".lost-at-commit", user=ROOT)
        created = api.dotfiles.create(group.id, DotfileSpec(".next", "y"), user=ROOT)
        assert created.dotfile.path == ".next"
    finally:
        harness.close()


def test_while_redis_is_down_config_is_served_and_dotfiles_are_written(
    postgres_url: str, redis_server_restartable: RedisServer
) -> None:
    redis_server = redis_server_restartable
    runtime = start_runtime(
        postgres_url,
        {"JASECI_LIKE__REDIS__ENABLED": "true", "JASECI_LIKE__REDIS__URL": redis_server.url},
    )
    try:
        config = ConfigApi(runtime.hook)
        config.config_set("group_config", {"retry": {"attempts": 3}})
        redis_server.kill()
        assert config.config_get("group_config")["retry"]["attempts"] == 3
        config.config_set("group_config", {"retry": {"attempts": 2}})
        assert config.config_get("group_config")["retry"]["attempts"] == 2
        app = runtime.hook.services["group_config"].app
        actor = app.system_user()
        group = app.sync.groups.create("no-redis", user=actor)
        app.sync.dotfiles.create(group.id, DotfileSpec(".written", "w"), user=actor)
        assert app.sync.dotfiles.get(group.id, ".written", user=actor).data == "w"
        redis_server.start()
        assert config.config_get("group_config")["retry"]["attempts"] == 2
    finally:
        runtime.stop(timeout=10.0)


def test_retries_stop_at_the_time_budget_whatever_attempts_are_left() -> None:
    # Nothing listens on the port: every attempt is refused at once, so only the
    # policy's max_total can end the retries before the 1000th attempt.
    engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    loop = RuntimeLoop("retry-budget")
    policy = RetryPolicy(attempts=1000, base_delay=0.01, max_delay=0.05, max_total=0.5)
    app = GroupConfig(engine, retry=policy, registry=CollectorRegistry(), loop=loop)
    try:
        began = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as caught:
            app.sync.dotfiles.get(uuid.uuid4(), ".bashrc", user=ROOT)
        took = time.monotonic() - began
    finally:
        loop.run(engine.dispose(), timeout=10)
        loop.stop()
    assert took < policy.max_total + 0.5, f"{took:.2f}s"
    attempts = app.metrics.value("attempts_total", operation="dotfile.get")
    assert 5 <= attempts < policy.attempts
    assert caught.value.code == "database_unavailable"
    assert f"{int(attempts)} attempt(s)" in str(caught.value)
