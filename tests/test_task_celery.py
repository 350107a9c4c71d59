"""The task service on Celery, with a real redis-server as broker and result backend.

The shared scenarios (``tests/task_support.py``) run with the service's own
in-process worker; the tests after them add what needs Celery: a worker in
another process (``jaseci-like worker``), a status that outlives the service,
a submit-only process, and the broker being down.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from jaseci_like_services.task import TaskContext, TaskService, TaskState
from jaseci_like_services.task.celery_runner import name_key, revoked_key

from jaseci_like import MemoryHook, MetaService, ServiceState
from jaseci_like.config.layers import ConfigLayers
from jaseci_like.runtime import describe_error
from tests import plugin_dist
from tests import task_support as scenario
from tests.plugin_fixtures import Cli
from tests.servers import RedisServer, free_port
from tests.task_probe_dist import probe_dist
from tests.task_support import SECRET, STOP_BOUND, WAIT, Factory, Gates, environ, make_factory

pytest_plugins = ["tests.plugin_fixtures"]

S = TaskState


@pytest.fixture
def gates() -> Iterator[Gates]:
    found = Gates()
    yield found
    found.release_all()


@pytest.fixture
def make(meta: MetaService, tmp_path: Path, redis_url: str) -> Factory:
    return make_factory(meta, tmp_path, {"mode": "celery", "broker_url": redis_url})


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_url)
    yield found
    found.close()


def everything_stored(client: redis.Redis) -> bytes:
    """Every key and value of every kind in the Redis database, as one byte string."""
    parts: list[Any] = []
    for key in client.scan_iter():
        kind = client.type(key)
        parts.append(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            parts.extend(f"{k!r}={v!r}".encode() for k, v in client.hgetall(key).items())
        elif kind == b"list":
            parts.extend(client.lrange(key, 0, -1))
        elif kind == b"set":
            parts.extend(client.smembers(key))
        elif kind == b"zset":
            parts.extend(client.zrange(key, 0, -1))
    return b"\n".join(p if isinstance(p, bytes) else str(p).encode() for p in parts)


# -- the shared scenarios ---------------------------------------------------------------


def test_states_move_pending_started_progress_success(make: Factory, gates: Gates) -> None:
    scenario.states_in_order(make, gates)


def test_a_failing_task_gives_failure_with_its_error_and_no_secret(
    make: Factory, client: redis.Redis
) -> None:
    done = scenario.failure_is_reported_without_secret(make)
    # Nothing in Redis holds the secret either: not the meta, not its traceback.
    stored = everything_stored(client)
    assert done.id.encode() in stored
    assert SECRET.encode() not in stored


class TraceRecords(logging.Handler):
    """Celery's report of each task outcome (``celery.app.trace``), and an event set
    at the first: Celery logs it after storing the result a waiter may already read."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.seen.set()


def test_a_failing_task_is_logged_as_one_warning_line_without_a_traceback(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """Celery's own report of a failure (ERROR, with a traceback) is not what an
    operator sees: the worker logs one masked WARNING line; Celery's is INFO."""
    trace = logging.getLogger("celery.app.trace")
    handler, level = TraceRecords(), trace.level
    trace.addHandler(handler)
    trace.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.INFO):
            done = scenario.failure_is_reported_without_secret(make)
            assert handler.seen.wait(scenario.WAIT), "celery reported no outcome"
    finally:
        trace.removeHandler(handler)
        trace.setLevel(level)
    ours = [r for r in caplog.records if r.name == "jaseci_like_services.task.celery_runner"]
    assert [(r.levelno, r.getMessage()) for r in ours] == [
        (logging.WARNING, f"task fail[{done.id}] failed: {done.error}")
    ]
    assert [(r.levelno, r.exc_info) for r in handler.records] == [(logging.INFO, None)]


def test_cancel_of_a_running_task_gives_revoked(make: Factory, gates: Gates) -> None:
    scenario.cancel_running(make, gates)


def test_cancel_of_a_queued_task_gives_revoked_and_it_never_runs(
    make: Factory, gates: Gates
) -> None:
    scenario.cancel_queued(make, gates)


def test_cancel_of_a_finished_task_changes_nothing(make: Factory) -> None:
    scenario.cancel_finished_changes_nothing(make)


def test_unknown_task_names_and_ids_are_typed_errors(make: Factory) -> None:
    scenario.unknown_names_and_ids(make)


def test_arguments_must_be_json_so_no_live_object_is_shared(make: Factory) -> None:
    scenario.arguments_must_be_json(make)


def test_a_task_gets_its_own_db_session(make: Factory) -> None:
    scenario.own_db_session(make)


def test_a_task_needing_the_db_without_one_fails_clearly(make: Factory) -> None:
    scenario.db_absent_is_a_clear_failure(make)


def test_a_periodic_task_fires_on_schedule(make: Factory, gates: Gates) -> None:
    scenario.periodic_fires(make, gates)


def test_stop_with_worker_and_beat_is_bounded_and_leaves_no_thread(make: Factory) -> None:
    scenario.stop_is_bounded_and_leaves_no_thread(make, {"worker", "beat"}, workers="2")


# -- Celery specifics -------------------------------------------------------------------


def test_app_is_a_celery_app_on_the_broker(make: Factory, redis_url: str) -> None:
    service = make()
    assert type(service.app).__name__ == "Celery"
    assert service.app.conf.broker_url == redis_url
    assert service.worker_name is not None and service.worker_name.startswith("jaseci-like-")


def test_a_task_registered_after_the_worker_started_runs(make: Factory) -> None:
    service = make()
    service.register("late", lambda ctx, x: x * 2)
    assert service.wait(service.submit("late", x=21), WAIT).result == 42


def test_a_status_outlives_the_service_that_ran_it(
    meta: MetaService, tmp_path: Path, redis_url: str
) -> None:
    first = make_factory(meta, tmp_path, {"mode": "celery", "broker_url": redis_url})
    service = first({"answer": lambda ctx: 42})
    task_id = service.wait(service.submit("answer"), WAIT).id
    service.stop()
    # Another registry, as another process would have: it never saw this task.
    later = MetaService.isolated()
    try:
        again = make_factory(later, tmp_path, {"mode": "celery", "broker_url": redis_url})
        reader = again(workers="0")
        status = reader.status(task_id)
        assert (status.name, status.state, status.result) == ("answer", S.SUCCESS, 42)
        assert reader.wait(task_id, WAIT).result == 42
    finally:
        later.clear()


def test_a_submit_only_process_queues_and_can_cancel_before_any_worker(
    make: Factory, client: redis.Redis
) -> None:
    service = make({"never": lambda ctx: "ran"}, workers="0")
    assert "worker" not in service.daemon_names()
    task_id = service.submit("never")
    assert service.status(task_id).state is S.PENDING
    assert service.wait(task_id, 0.05).state is S.PENDING  # nobody runs it here
    # The timed-out wait stopped listening for the result (not left to garbage collection,
    # which may come after Redis is gone).
    channel = service.app.backend.get_key_for_task(task_id)
    deadline = time.monotonic() + WAIT
    while (listeners := client.pubsub_numsub(channel)[0][1]) != 0:
        assert time.monotonic() < deadline, f"{listeners} still subscribed to {channel}"
    assert client.get(name_key(task_id)) == b"never"
    cancelled = service.cancel(task_id)
    assert cancelled.state is S.REVOKED
    assert client.exists(revoked_key(task_id))
    assert service.status(task_id).state is S.REVOKED


def test_a_broker_that_is_down_fails_the_start_without_its_password(
    meta: MetaService, tmp_path: Path
) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    hook = MemoryHook(ConfigLayers(environ=environ("task", {"mode": "celery", "broker_url": url})))
    hook.meta = meta
    meta.add_service_builder("task", TaskService)
    service = meta.get_service("task", hook)
    assert service.state is ServiceState.FAILED
    message = describe_error(service.error)
    assert message is not None and "ConnectionError" in message
    assert SECRET not in message
    assert service.daemon_names() == []


def test_the_worker_follows_a_broker_restart(
    meta: MetaService, tmp_path: Path, redis_server_restartable: RedisServer
) -> None:
    url = redis_server_restartable.url
    service = make_factory(meta, tmp_path, {"mode": "celery", "broker_url": url})(
        {"echo": lambda ctx, v: v}
    )
    assert service.wait(service.submit("echo", v=1), WAIT).result == 1
    redis_server_restartable.kill()
    redis_server_restartable.start()
    # The worker reconnects by itself; a task sent after the restart still runs.
    assert service.wait(service.submit("echo", v=2), WAIT).result == 2
    assert service.is_running() and service.health()


def test_stop_while_the_broker_is_down_is_bounded(
    meta: MetaService, tmp_path: Path, redis_server_restartable: RedisServer
) -> None:
    """The worker is in its reconnect loop: it gives up when the service stops."""
    before = set(threading.enumerate())
    url = redis_server_restartable.url
    service = make_factory(meta, tmp_path, {"mode": "celery", "broker_url": url})(
        {"echo": lambda ctx, v: v}
    )
    assert service.wait(service.submit("echo", v=1), WAIT).result == 1
    redis_server_restartable.kill()
    with pytest.raises(redis.ConnectionError):
        service.health()  # the runtime's status reports it, masked
    began = time.monotonic()
    service.stop()
    took = time.monotonic() - began
    assert took < STOP_BOUND, f"stop took {took:.2f}s"
    assert service.state is ServiceState.STOPPED
    assert [t.name for t in threading.enumerate() if t not in before and t.is_alive()] == []


# -- a worker in another process ----------------------------------------------------------


@pytest.fixture(scope="session")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The task_probe plugin installed (once per session) into a directory of its own."""
    return plugin_dist.build_site(tmp_path_factory.mktemp("task-probe"), [probe_dist()])


def _worker_env(redis_url: str) -> dict[str, str]:
    return environ("task", {"mode": "celery", "broker_url": redis_url, "workers": "2"})


def test_a_task_submitted_here_runs_on_a_worker_in_another_process(
    make: Factory, cli: Cli, probe_site: Path, redis_url: str, client: redis.Redis
) -> None:
    def not_here(ctx: TaskContext, **kwargs: Any) -> None:
        raise AssertionError("ran in the submitting process")

    # This process only submits (no worker here); it knows the names it sends.
    service = make({"probe.whoami": not_here, "probe.hold": not_here}, workers="0")
    with cli.serve("worker", env=_worker_env(redis_url), sites=[probe_site]) as worker:
        worker.wait_for_line("ready: task worker jaseci-like-")
        done = service.wait(service.submit("probe.whoami", tag="cross"), WAIT)
        assert done.state is S.SUCCESS, done.error
        assert done.result["pid"] == worker.proc.pid != os.getpid()
        assert done.result["tag"] == "cross"

        # Cancel it while it runs over there: the revocation key reaches it.
        task_id = service.submit(
            "probe.hold", redis_url=redis_url, started="probe:started", gate="probe:gate"
        )
        started = client.blpop(["probe:started"], timeout=WAIT)
        assert started is not None and started[1] == task_id.encode()
        assert service.status(task_id).state is S.STARTED
        assert service.cancel(task_id).state is S.STARTED
        client.rpush("probe:gate", "go")
        assert service.wait(task_id, WAIT).state is S.REVOKED

        worker.signal_and_wait(signal.SIGTERM)
    assert worker.proc.returncode == 0, worker.describe()
    assert "stopped in" in worker.stdout


def test_the_worker_command_refuses_the_embedded_mode(cli: Cli) -> None:
    done = cli.run("worker")
    assert done.returncode == 3, done.stderr
    assert "task.mode = 'embedded'" in done.stderr
    assert "needs task.mode: celery" in done.stderr
