"""The leader lease: one holder, fenced claims, and beat firing once per tick
across real processes, through a kill -9 of the leader."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis

from jaseci_like import MetaService, Runtime
from jaseci_like.cluster import ClusterStore, Leadership, is_leader
from jaseci_like.cluster.config import ClusterConfig
from jaseci_like.cluster.redis_store import RedisStore
from tests import plugin_dist
from tests.plugin_dist import Dist
from tests.plugin_fixtures import Cli, Served

pytest_plugins = ["tests.plugin_fixtures"]

LEASE = 1.5
DEADLINE = 60.0
_TICK_PLUGIN = '''
"""A task that records where and when it ran, in a Redis list."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from jaseci_like import hookimpl


def record(ctx: Any, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.rpush("ticks", json.dumps({"pid": os.getpid(), "t": time.time()}))
    finally:
        client.close()


@hookimpl
def jaseci_like_tasks() -> dict[str, Any]:
    return {"tick.record": record}
'''
SENT = re.compile(r"beat: sending beat:tick:(\d+)")


def wait_until(what: str, check: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)  # polling other processes' output: nothing to wait on here


# -- the stores --------------------------------------------------------------------------


@pytest.fixture(params=["redis", "postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Iterator[ClusterStore]:
    if request.param == "redis":
        yield RedisStore(redis.Redis.from_url(redis_url))
        return
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path / 'cluster.sqlite'}"
    )
    runtime = Runtime(
        environ={"JASECI_LIKE__DB__URL": url, "JASECI_LIKE__API__PORT": "0"},
        meta=MetaService.isolated(),
    )
    runtime.open_store(required=True)
    try:
        found = runtime.cluster_store()
        assert found.kind == request.param
        yield found
    finally:
        runtime.stop()


def test_one_holder_at_a_time_and_a_larger_token_on_each_take(store: ClusterStore) -> None:
    first = store.acquire("leader", "a", LEASE)
    assert first is not None
    assert store.acquire("leader", "b", LEASE) is None  # held
    assert store.acquire("leader", "a", LEASE) == first  # renewed, same token
    held = store.holder("leader")
    assert held is not None and (held.holder, held.token) == ("a", first)
    assert 0 < held.expires_in <= LEASE

    assert store.claim("tick:1", "leader", "a", first, 60) is True
    assert store.claim("tick:1", "leader", "a", first, 60) is False  # once only

    taken: list[int] = []

    def b_takes() -> bool:
        token = store.acquire("leader", "b", LEASE)
        if token is not None:
            taken.append(token)
        return token is not None

    wait_until("b takes the lease after it expires", b_takes)
    assert taken[0] > first  # fencing: tokens only grow
    # The old holder, which has not noticed, is fenced out of new work.
    assert store.claim("tick:2", "leader", "a", first, 60) is None
    assert store.claim("tick:2", "leader", "b", taken[0], 60) is True

    store.release("leader", "a", first)  # not the holder: changes nothing
    assert store.acquire("leader", "a", LEASE) is None
    store.release("leader", "b", taken[0])
    assert store.holder("leader") is None
    assert store.acquire("leader", "a", LEASE) is not None  # free at once after a release


def test_leadership_moves_and_tells_who_asked(store: ClusterStore) -> None:
    config = ClusterConfig(lease=LEASE, heartbeat=0.2, prune_after=5)
    a = Leadership("a", lambda: store, config)
    b = Leadership("b", lambda: store, config)
    changes: list[bool] = []
    b.on_change(changes.append)
    assert a.attempt() is True and a.is_leader("beat") and "beat" in a.duties
    assert b.attempt() is False and not b.is_leader()
    a.release()
    assert not a.is_leader() and a.token is None
    assert b.attempt() is True and changes == [True]
    assert b.claim("x", 10) is True and b.claim("x", 10) is False
    assert a.claim("y", 10) is False  # not leading: never claims


def test_a_registry_that_joined_no_cluster_is_alone_and_leads() -> None:
    assert is_leader(MetaService.isolated(), "beat") is True


# -- beat across processes ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tick_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = Dist(
        name="jl-tick-probe",
        package="jl_tick_probe",
        files={"plugin.py": _TICK_PLUGIN},
        entry_points={"tick_probe": "jl_tick_probe.plugin"},
    )
    return plugin_dist.build_site(tmp_path_factory.mktemp("tick-probe"), [dist])


def _sent(proc: Served) -> list[int]:
    return [int(m.group(1)) for line in proc.stderr_lines if (m := SENT.search(line))]


def test_a_periodic_task_fires_once_per_tick_and_resumes_after_the_leader_is_killed(
    cli: Cli, redis_url: str, postgres_url: str, tick_site: Path
) -> None:
    env = {
        "JASECI_LIKE__DB__URL": postgres_url,
        "JASECI_LIKE__REDIS__ENABLED": "true",
        "JASECI_LIKE__REDIS__URL": redis_url,
        "JASECI_LIKE__API__ENABLED": "false",
        "JASECI_LIKE__TASK__PERIODIC": json.dumps(
            {"tick": {"task": "tick.record", "every": 1, "kwargs": {"redis_url": redis_url}}}
        ),
        "JASECI_LIKE__RUNTIME__CLUSTER__HEARTBEAT": "0.3",
        "JASECI_LIKE__RUNTIME__CLUSTER__LEASE": str(LEASE),
    }
    client = redis.Redis.from_url(redis_url)
    with ExitStack() as stack:
        procs = [
            stack.enter_context(cli.serve("up", "--log-level", "info", env=env, sites=[tick_site]))
            for _ in range(3)
        ]
        for proc in procs:
            proc.wait_for_line("ready:")
        wait_until("14 ticks", lambda: sum(len(_sent(p)) for p in procs) >= 14, 120)
        leaders = [p for p in procs if _sent(p)]
        assert len(leaders) == 1, [(p.proc.pid, _sent(p)) for p in procs]
        old = leaders[0]
        os.kill(old.proc.pid, signal.SIGKILL)
        killed_at = time.time()
        old.finish()
        before = _sent(old)
        survivors = [p for p in procs if p is not old]
        wait_until("14 ticks after the kill", lambda: sum(len(_sent(p)) for p in survivors) >= 14)
        for proc in survivors:
            proc.signal_and_wait(signal.SIGTERM)
            assert proc.proc.returncode == 0, proc.describe()

    after = {p.proc.pid: _sent(p) for p in survivors}
    new_leaders = [pid for pid, slots in after.items() if slots]
    everything = before + [s for slots in after.values() for s in slots]
    # Never twice: no tick sent by two processes, or twice by one.
    assert [s for s, n in Counter(everything).items() if n > 1] == []
    # Every tick while a leader lived: consecutive seconds, none skipped.
    for slots in [before, *after.values()]:
        assert slots == list(range(slots[0], slots[0] + len(slots))) if slots else not slots
    # Taken over (by one survivor, unless the lease then moved on a clean stop) after the kill,
    # within the lease time and a standby's retry, plus the tick it waits for.
    first_new = min(s for slots in after.values() for s in slots)
    assert first_new > before[-1]
    assert len(new_leaders) >= 1
    config = ClusterConfig(lease=LEASE, heartbeat=0.3)
    assert first_new - killed_at <= config.lease + config.retry_every + 1 + 1.0
    # Each sent tick ran once (the killed leader's last one may have died with it).
    runs = [json.loads(r) for r in client.lrange("ticks", 0, -1)]
    assert len(everything) - 1 <= len(runs) <= len(everything)


def test_a_standby_tries_again_when_the_holders_lease_ends(store: ClusterStore) -> None:
    config = ClusterConfig(lease=10)  # a standby's plain retry: every 1 s
    assert store.acquire("leader", "a", 0.5) is not None  # a lease that ends sooner
    b = Leadership("b", lambda: store, config)
    assert b.attempt() is False
    held = store.holder("leader")
    wait = b._standby_wait()
    # Not a blind retry_every: right after the holder's lease ends (or at once, if it
    # has ended since).
    assert wait < config.retry_every
    if held is not None:
        assert wait <= held.expires_in + 0.05
    wait_until("a's lease ends", lambda: store.holder("leader") is None)
    assert b._standby_wait() < 0.05
    assert b.attempt() is True


def _scheduler(catch_up: float) -> tuple[Any, list[str], int]:
    from celery import Celery  # type: ignore[import-untyped]
    from jaseci_like_services.task.beat import SubmittingScheduler

    app = Celery("beat-probe", set_as_current=False)
    app.conf.beat_schedule = {"tick": {"task": "t", "schedule": 1.0}}
    claims: list[str] = []

    def claim(key: str, ttl: float) -> bool:
        claims.append(key)
        return True

    slot = int(app.now().timestamp())
    scheduler = SubmittingScheduler(app, lambda name, kwargs: name, claim=claim, catch_up=catch_up)
    return scheduler, claims, slot


def test_a_new_leaders_beat_sends_the_tick_missed_while_no_one_led() -> None:
    scheduler, claims, slot = _scheduler(catch_up=5.0)
    scheduler.tick()
    # The current slot is due at once (its claim tells whether the old leader sent it).
    assert [int(k.rsplit(":", 1)[1]) >= slot for k in claims] == [True]

    scheduler, claims, slot = _scheduler(catch_up=0.0)
    scheduler.tick()
    # Without catch-up the first tick is the next slot's: nothing now, unless a second
    # turned since the scheduler was made.
    assert all(int(k.rsplit(":", 1)[1]) > slot for k in claims)
