"""The instance registry, ``status`` and ``config refresh`` across real processes.

Three ``up`` processes and one ``worker`` share a real Redis and PostgreSQL; every
wait is on a condition, with a deadline far above the configured heartbeat.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from jaseci_like.cluster import MemoryStore, read_cluster
from jaseci_like.cluster.sql_store import SqlStore
from tests.plugin_fixtures import Cli, Served

pytest_plugins = ["tests.plugin_fixtures"]

#: Small, so lost and pruned come within seconds; the deadlines are far above.
HEARTBEAT, LOST_AFTER, PRUNE_AFTER = 0.3, 3, 4.0
DEADLINE = 60.0


def cluster_env(redis_url: str, postgres_url: str) -> dict[str, str]:
    """Redis + PostgreSQL + Celery on Redis: the production layout, small timings."""
    return {
        "JASECI_LIKE__DB__URL": postgres_url,
        "JASECI_LIKE__REDIS__ENABLED": "true",
        "JASECI_LIKE__REDIS__URL": redis_url,
        "JASECI_LIKE__TASK__MODE": "celery",
        "JASECI_LIKE__TASK__BROKER_URL": redis_url,
        "JASECI_LIKE__TASK__WORKERS": "0",
        "JASECI_LIKE__RUNTIME__CLUSTER__HEARTBEAT": str(HEARTBEAT),
        "JASECI_LIKE__RUNTIME__CLUSTER__LOST_AFTER": str(LOST_AFTER),
        "JASECI_LIKE__RUNTIME__CLUSTER__PRUNE_AFTER": str(PRUNE_AFTER),
        "JASECI_LIKE__RUNTIME__CLUSTER__LEASE": "1.5",
        "JASECI_LIKE__API__PORT": "0",  # a free one: tests run at once
    }


def wait_until(what: str, check: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)  # polling another process's writes: nothing to wait on here


def status_json(cli: Cli, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = cli.run("status", "--json", env=env)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def by_pid(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(i["pid"]): i for i in doc["instances"]}


def services_of(instance: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in instance["services"]}


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[SqlStore]:
    """The cluster store the processes share (the database), read by the test itself."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from jaseci_like.loop import RuntimeLoop

    loop = RuntimeLoop()
    engine = create_async_engine(postgres_url)
    try:
        yield SqlStore(engine, loop)
    finally:
        loop.run(engine.dispose())
        loop.stop(5.0)


@pytest.fixture
def procs(cli: Cli, redis_url: str, postgres_url: str) -> Iterator[tuple[list[Served], Served]]:
    env = cluster_env(redis_url, postgres_url)
    worker_env = {**env, "JASECI_LIKE__TASK__WORKERS": "1"}
    with ExitStack() as stack:
        ups = [stack.enter_context(cli.serve("up", env=env)) for _ in range(3)]
        worker = stack.enter_context(cli.serve("worker", env=worker_env))
        for up in ups:
            up.wait_for_line("ready:")
        worker.wait_for_line("ready: task worker")
        yield ups, worker


def test_status_lists_every_live_instance_then_shows_a_killed_one_lost_then_pruned(
    cli: Cli,
    redis_url: str,
    postgres_url: str,
    procs: tuple[list[Served], Served],
    pg_store: SqlStore,
) -> None:
    ups, worker = procs
    env = cluster_env(redis_url, postgres_url)
    store = pg_store
    pids = {p.proc.pid for p in ups} | {worker.proc.pid}
    # Health is filled in by the first report after start: wait for it, then ask the CLI.
    wait_until(
        "four instances reporting health",
        lambda: (
            {int(s.record["pid"]) for s in store.instances()} == pids
            and all(
                x.get("healthy") is not None
                for s in store.instances()
                for x in s.record["services"]
                if x["state"] == "RUNNING"
            )
        ),
    )
    code, doc = status_json(cli, env)
    assert code == 0, doc["problems"]
    assert doc["store"] == "postgresql"  # the database, even with Redis on
    found = by_pid(doc)
    assert set(found) == pids  # the status command itself is no instance
    assert sorted(i["role"] for i in found.values()) == ["up", "up", "up", "worker"]
    for up in ups:
        instance = found[up.proc.pid]
        services = services_of(instance)
        assert services["api"]["state"] == "RUNNING" and services["api"]["healthy"] is True
        assert services["task"]["state"] == "RUNNING"
        assert instance["api_url"].startswith("http://127.0.0.1:")
        assert instance["lost"] is False and instance["version"]
    worker_services = services_of(found[worker.proc.pid])
    assert "api" not in worker_services and worker_services["task"]["state"] == "RUNNING"
    assert found[worker.proc.pid]["api_url"] is None
    assert sum(1 for i in found.values() if i["leader"]) == 1
    assert doc["leader"]["id"] in {i["id"] for i in found.values()}
    # Nothing was started for the status: no process beyond ours answers, no new instance.
    assert {int(s.record["pid"]) for s in store.instances()} == pids

    text = cli.run("status", env=env)
    assert text.returncode == 0, text.stderr
    assert "store: postgresql; instances: 4" in text.stdout
    assert all(str(pid) in text.stdout for pid in pids)

    victim = ups[0]
    victim_id = found[victim.proc.pid]["id"]
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.finish()
    view = read_cluster(store, prune=False)
    wait_until(
        "the killed instance shown lost",
        lambda: any(
            i.id == victim_id and i.lost for i in read_cluster(store, prune=False).instances
        ),
    )
    view = read_cluster(store, prune=False)
    lost = next(i for i in view.instances if i.id == victim_id)
    assert lost.age > HEARTBEAT * LOST_AFTER  # lost means three heartbeats missed
    assert [i.id for i in view.instances if i.lost] == [victim_id]  # the others beat on

    code, doc = status_json(cli, env)
    if victim_id in {i["id"] for i in doc["instances"]}:  # not yet pruned: shown lost
        assert code == 5
        assert any(victim_id in p and "lost" in p for p in doc["problems"])
    # Pruned after prune_after by the others' heartbeats, without anyone reading.
    wait_until(
        "the killed instance pruned",
        lambda: victim_id not in {s.record["id"] for s in store.instances()},
    )
    code, doc = status_json(cli, env)
    assert code == 0, doc["problems"]
    assert set(by_pid(doc)) == pids - {victim.proc.pid}

    # A clean stop leaves at once: no lost record behind it.
    worker_id = by_pid(doc)[worker.proc.pid]["id"]
    worker.signal_and_wait(signal.SIGTERM)
    assert worker_id not in {s.record["id"] for s in store.instances()}


def test_config_refresh_resets_the_api_where_it_runs_and_starts_nothing_in_the_worker(
    cli: Cli, redis_url: str, postgres_url: str, pg_store: SqlStore
) -> None:
    env = cluster_env(redis_url, postgres_url)
    store = pg_store
    with (
        cli.serve("up", env=env) as up,
        cli.serve("worker", env={**env, "JASECI_LIKE__TASK__WORKERS": "1"}) as worker,
    ):
        up.wait_for_line("ready:")
        worker.wait_for_line("ready: task worker")
        wait_until("both registered", lambda: len(store.instances()) == 2)
        records = {int(s.record["pid"]): s.record for s in store.instances()}
        api_before = records[up.proc.pid]["api_url"]

        done = cli.run("config", "refresh", "api", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
        assert "reset" in rows[records[up.proc.pid]["id"]].split()
        assert "skipped" in rows[records[worker.proc.pid]["id"]].split()
        assert "not run by this instance" in rows[records[worker.proc.pid]["id"]]

        # The API was replaced in `up` (a new server on a new free port) ...
        wait_until(
            "the new API address reported",
            lambda: (
                next(
                    s.record["api_url"] for s in store.instances() if s.record["pid"] == up.proc.pid
                )
                != api_before
            ),
        )
        # ... and the worker still runs no API.
        wait_until(
            "a report of the worker after the refresh",
            lambda: all(
                x.get("healthy") is not None
                for s in store.instances()
                if s.record["pid"] == worker.proc.pid
                for x in s.record["services"]
                if x["state"] == "RUNNING"
            ),
        )
        worker_record = next(
            s.record for s in store.instances() if s.record["pid"] == worker.proc.pid
        )
        assert "api" not in services_of(worker_record)
        assert "ready:" not in worker.stdout.replace("ready: task worker", "")

        # A name no service has: a usage problem, nothing asked of anyone.
        unknown = cli.run("config", "refresh", "nosuch", env=env)
        assert unknown.returncode == 3, unknown.stderr


def test_the_memory_store_is_alone_and_leads() -> None:
    store = MemoryStore()
    assert store.acquire("leader", "a", 5) == 1
    assert store.acquire("leader", "b", 5) is None
    assert store.claim("t1", "leader", "a", 1, 5) is True
    assert store.claim("t1", "leader", "a", 1, 5) is False
    assert store.claim("t2", "leader", "b", 1, 5) is None  # not the holder: fenced
