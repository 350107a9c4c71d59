"""Cluster figures: how long the system is without a leader, and ``status`` cost.

- ``cluster.failover_s``: three ``up`` processes on one Redis and PostgreSQL with a
  periodic task every second; the leader is killed with SIGKILL, and the time to
  the first tick the task records from another process is measured. Baseline:
  the lease time (``runtime.cluster.lease``), so the ratio says how much of it
  a failover takes; 10 kills (3 with ``--quick``), median (max in the notes).
- ``cluster.status_ms``: ``jaseci-like status --json`` with 10 instances in the
  registry, against ``jaseci-like --version`` (the command line's own start).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.registry import Context, Target, bench
from benchmarks.timing import median, spread
from jaseci_like.cluster.store import ClusterStore

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "jaseci-like"
#: Bound on any one wait; a safety net, not a measurement.
WAIT = 120.0
_TICK_PLUGIN = """
import json, os, time
import redis
from jaseci_like import hookimpl

def record(ctx, redis_url):
    client = redis.Redis.from_url(redis_url)
    try:
        client.rpush("ticks", json.dumps({"pid": os.getpid(), "t": time.time()}))
    finally:
        client.close()

@hookimpl
def jaseci_like_tasks():
    return {"tick.record": record}
"""


@contextmanager
def _servers() -> Iterator[tuple[str, str]]:
    sys.path.insert(0, str(ROOT))
    from tests.servers import PostgresServer, RedisServer

    with RedisServer() as redis_server, PostgresServer() as pg:
        yield redis_server.url, pg.create_database("bench")


def _env(redis_url: str, postgres_url: str, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")}
    env.update(
        {
            "XDG_DATA_HOME": str(data),
            "JASECI_LIKE__DB__URL": postgres_url,
            "JASECI_LIKE__REDIS__ENABLED": "true",
            "JASECI_LIKE__REDIS__URL": redis_url,
            "JASECI_LIKE__API__ENABLED": "false",
        }
    )
    return env


def _spawn(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [str(SCRIPT), "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + WAIT
    for line in proc.stdout:
        if line.startswith("ready:"):
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise RuntimeError("an up process did not become ready")


@contextmanager
def _cluster_store(env: dict[str, str]) -> Iterator[ClusterStore]:
    """The store the ``up`` processes of ``env`` meet in, found as they find it (the
    database when one is configured, else Redis): read here, never joined."""
    from jaseci_like import MetaService, Runtime

    runtime = Runtime(
        environ={**env, "JASECI_LIKE__RUNTIME__CLUSTER__ENABLED": "false"},
        meta=MetaService.isolated(),
    )
    runtime.open_store(required=True)
    try:
        yield runtime.cluster_store()
    finally:
        runtime.stop()


@bench("cluster.failover_s", unit="s", better="lower", target=Target("ratio", "<=", 1))
def failover(ctx: Context) -> tuple[float, float]:
    """Leader killed -> first tick sent by the new leader, against the lease time."""
    import redis

    from jaseci_like.cluster import ClusterConfig

    sys.path.insert(0, str(ROOT))
    from tests import plugin_dist

    lease = ClusterConfig().lease
    took: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        _servers() as (redis_url, pg_url),
        ExitStack() as stack,
    ):
        site = plugin_dist.build_site(
            Path(tmp) / "site",
            [
                plugin_dist.Dist(
                    name="jl-tick-bench",
                    package="jl_tick_bench",
                    files={"plugin.py": _TICK_PLUGIN},
                    entry_points={"tick_bench": "jl_tick_bench.plugin"},
                )
            ],
        )
        env = _env(redis_url, pg_url, Path(tmp) / "data")
        env["PYTHONPATH"] = str(site)
        env["JASECI_LIKE__TASK__PERIODIC"] = json.dumps(
            {"tick": {"task": "tick.record", "every": 1, "kwargs": {"redis_url": redis_url}}}
        )
        client = redis.Redis.from_url(redis_url)
        store = stack.enter_context(_cluster_store(env))
        procs: dict[int, subprocess.Popen[str]] = {}

        def reap() -> None:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                proc.wait()

        stack.callback(reap)
        for _ in range(3):
            proc = _spawn(env)
            procs[proc.pid] = proc
        for _ in range(ctx.rounds(10)):
            deadline = time.monotonic() + WAIT
            while (held := store.holder("leader")) is None:
                assert time.monotonic() < deadline, "no leader"
                time.sleep(0.05)
            pid = next(
                int(s.record["pid"]) for s in store.instances() if s.record["id"] == held.holder
            )
            # Let it tick at least once, so the kill lands mid-lease, as in life.
            seen = client.llen("ticks")
            while client.llen("ticks") == seen:
                assert time.monotonic() < deadline, "the leader sent no tick"
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
            killed = time.time()
            procs.pop(pid).wait()
            start = client.llen("ticks")
            first: float | None = None
            while first is None:
                assert time.monotonic() < deadline, "no tick after the kill"
                for raw in client.lrange("ticks", start, -1):
                    tick = json.loads(raw)
                    if tick["pid"] != pid:
                        first = float(tick["t"])
                        break
                time.sleep(0.02)
            took.append(first - killed)
            proc = _spawn(env)  # three again for the next round
            procs[proc.pid] = proc
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
    ctx.note(
        f"{len(took)} kills of the leader of 3 up processes (Redis + "
        f"PostgreSQL, a task every 1 s); lease {lease:g}s, max {max(took):.2f}s, "
        f"spread {spread(took)}"
    )
    return median(took), lease


@bench("cluster.status_ms", unit="ms", better="lower", target=Target("ratio", "<", 1.5))
def status_ms(ctx: Context) -> tuple[float, float]:
    """``status --json`` with 10 instances registered vs ``--version``; medians."""
    from jaseci_like.cluster import ClusterConfig

    with (
        tempfile.TemporaryDirectory() as tmp,
        _servers() as (redis_url, pg_url),
        _cluster_store(_env(redis_url, pg_url, Path(tmp) / "data")) as store,
    ):
        env = _env(redis_url, pg_url, Path(tmp) / "data")
        config = ClusterConfig(prune_after=3600, heartbeat=300)
        services = [
            {"name": n, "enabled": True, "state": "RUNNING", "healthy": True, "restarts": 0}
            for n in ("api", "db", "group_config", "redis", "task")
        ]
        for n in range(10):
            store.put_instance(
                f"bench{n:02d}",
                {
                    "id": f"bench{n:02d}",
                    "host": "bench",
                    "pid": 1000 + n,
                    "role": "up" if n else "worker",
                    "version": "0",
                    "started_at": time.time(),
                    "heartbeat": config.heartbeat,
                    "lost_after": config.lost_seconds,
                    "prune_after": config.prune_after,
                    "services": services,
                },
            )

        def timed(*args: str) -> float:
            began = time.perf_counter()
            done = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, check=False)
            took = (time.perf_counter() - began) * 1000
            if done.returncode != 0:
                ctx.problem(f"jaseci-like {' '.join(args)} exited {done.returncode}")
            return took

        timed("status", "--json")  # untimed: migrations and bytecode
        timed("--version")
        ours, base = [], []
        for _ in range(ctx.rounds(7)):
            ours.append(timed("status", "--json"))
            base.append(timed("--version"))
    ctx.note(f"status {spread(ours)} ms, --version {spread(base)} ms")
    return median(ours), median(base)
