"""Config figures: the hot read, a Redis read that misses memory, propagation."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.probe import ProbePlugin
from benchmarks.registry import Context, Target, bench
from benchmarks.timing import median, paired
from jaseci_like import ConfigApi, MetaService, RedisHook, Runtime

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def _servers(postgres: bool) -> Iterator[tuple[str, str | None]]:
    """A private redis-server (and PostgreSQL cluster) for one figure."""
    sys.path.insert(0, str(ROOT))
    from tests.servers import PostgresServer, RedisServer

    with RedisServer() as redis_server:
        if not postgres:
            yield redis_server.url, None
            return
        with PostgresServer() as pg:
            yield redis_server.url, pg.create_database("bench")


@bench("config.read_hot", unit="ns", better="lower", target=Target("ratio", "<=", 10))
def read_hot(ctx: Context) -> tuple[float, float]:
    """``service.config["port"]`` (the cached read-only view) vs ``dict["port"]``; min of rounds."""
    meta = MetaService.isolated()
    runtime = Runtime(plugins={"probe": ProbePlugin()}, meta=meta, environ={}, discover=False)
    runtime.start()
    service = runtime.hook.services["probe"]
    table = dict(service.config)
    number = 200_000 if ctx.quick else 2_000_000
    ours = timeit.Timer("config['port']", "config = s.config", globals={"s": service})
    base = timeit.Timer("table['port']", "table = t", globals={"t": table})
    a, b = paired(
        lambda: ours.timeit(number) * 1e9 / number,
        lambda: base.timeit(number) * 1e9 / number,
        ctx.rounds(7),
    )
    runtime.stop()
    return min(a), min(b)


@bench("config.redis_miss_read", unit="us", better="lower", target=Target("ratio", "<=", 1.3))
def redis_miss_read(ctx: Context) -> tuple[float, float]:
    """``RedisHook.get_glob`` with the memory copy dropped first (so it reads Redis),
    vs a raw redis-py ``HGET`` of the same field on the same client; median µs per
    read over alternating batches (the drop itself is outside the timed call)."""
    import redis

    with _servers(postgres=False) as (url, _):
        client = redis.Redis.from_url(url)
        hook = RedisHook(client=client)
        hook.save_glob("PROBE_CONFIG", {"level": 1, "port": 8000})
        key = hook.globs_key
        reads = 200 if ctx.quick else 2000

        def ours() -> float:
            total = 0
            for _ in range(reads):
                hook._globs.pop("PROBE_CONFIG", None)
                began = time.perf_counter_ns()
                hook.get_glob("PROBE_CONFIG")
                total += time.perf_counter_ns() - began
            return total / reads / 1e3

        def raw() -> float:
            total = 0
            for _ in range(reads):
                began = time.perf_counter_ns()
                client.hget(key, "PROBE_CONFIG")
                total += time.perf_counter_ns() - began
            return total / reads / 1e3

        a, b = paired(ours, raw, ctx.rounds(9))
        if hook.get_glob("PROBE_CONFIG") is None:
            ctx.problem("the glob was not found through the hook")
        client.close()
    return median(a), median(b)


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@bench("config.propagation_p99", unit="ms", better="lower", target=Target("value", "<", 50))
def propagation_p99(ctx: Context) -> tuple[float, float]:
    """p99 ms from ``config_set`` in this process to the value being readable in
    another process sharing Redis + PostgreSQL (it learns by pub/sub and reads it).
    Baseline: p99 of a raw redis-py PUBLISH reaching a subscriber thread."""
    import redis

    changes = 40 if ctx.quick else 200
    with _servers(postgres=True) as (redis_url, pg_url):
        assert pg_url is not None
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")},
            "JASECI_LIKE__DB__URL": pg_url,
            "JASECI_LIKE__REDIS__ENABLED": "true",
            "JASECI_LIKE__REDIS__URL": redis_url,
            # Writer and reader start an API each: free ports, not both on 8000.
            "JASECI_LIKE__API__PORT": "0",
            "PYTHONPATH": str(ROOT),
        }
        writer = Runtime(plugins={"probe": ProbePlugin()}, meta=MetaService.isolated(), environ=env)
        writer.start()
        api = ConfigApi(writer.hook)
        reader = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.config_reader"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert reader.stdin is not None and reader.stdout is not None
        try:
            if reader.stdout.readline().strip() != "ready":
                ctx.problem("the reader process did not start")
                return float("nan"), float("nan")
            ours: list[float] = []
            for level in range(1, changes + 1):
                began = time.monotonic_ns()
                api.config_set("probe", {"level": level})
                seen, stamp = reader.stdout.readline().split()
                if int(seen) != level:
                    ctx.problem(f"reader saw level {seen}, expected {level}")
                ours.append((int(stamp) - began) / 1e6)
        finally:
            reader.stdin.close()
            reader.wait(10)
            writer.stop()
        base = _raw_pubsub_ms(redis.Redis.from_url(redis_url), changes)
    ctx.note(f"propagation: median {median(ours):.2f} ms, max {max(ours):.2f} ms")
    return _p99(ours), _p99(base)


def _raw_pubsub_ms(client: Any, count: int) -> list[float]:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("bench")
    got = threading.Event()
    stamps: list[int] = []

    def listen() -> None:
        while len(stamps) < count:
            message = pubsub.get_message(timeout=1.0)
            if message is not None:
                stamps.append(time.monotonic_ns())
                got.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    out = []
    for _ in range(count):
        got.clear()
        began = time.monotonic_ns()
        client.publish("bench", "x")
        got.wait(5)
        out.append((stamps[-1] - began) / 1e6)
    thread.join(5)
    pubsub.close()
    client.close()
    return out
