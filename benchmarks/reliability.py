"""Reliability figures: what clients see when the API is pushed hard.

``reliability.sqlite_writers``: WRITERS concurrent HTTP writers, each on a keep-alive
connection of its own, for SECONDS against the embedded runtime on SQLite. Each
writer creates a dotfile of its own (PUT, 201) and deletes it (DELETE, 204), again
and again, spread over a few groups so no group limit is reached. The value is the
p99 latency of those requests; every other answer (a 503 after lock waiting, a
reset connection) is an error, reported as a problem of the row: there must be
none. The baseline is a bare FastAPI app, served the same way, whose PUT and
DELETE each write one row to an SQLite file through SQLAlchemy's aiosqlite engine
the plain way (WAL, BEGIN IMMEDIATE, the same busy timeout, no queue in front).
One client process drives both, one after the other.

``reliability.refresh_blip`` and ``reliability.redis_return_blip``: requests a
client listing dotfiles without pause sees fail while group_config is refreshed
20 times, or while the Redis under a Celery task service is killed and comes back
(both must be 0: the API is not restarted with what it depends on).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from benchmarks.registry import Context, Target, bench
from jaseci_like import MetaService, Runtime
from jaseci_like.loop import RuntimeLoop

WRITERS = 200
SECONDS = 20.0
GROUPS = 4
BUSY_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Load:
    """What the client process is asked to do: ``writers`` loops of create then delete
    for ``seconds``, writer n on ``paths[n % len(paths)]`` + its own name."""

    url: str
    headers: dict[str, str]
    paths: list[str]
    writers: int
    seconds: float


@dataclass(frozen=True)
class Outcome:
    """Latencies (seconds) of the expected answers; counts of every other one."""

    latencies: list[float]
    errors: dict[str, int]
    elapsed: float

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> str:
        rate = len(self.latencies) / self.elapsed
        p50, p99 = self.percentile(0.5) * 1000, self.percentile(0.99) * 1000
        worst = max(self.latencies, default=0.0) * 1000
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "none"
        return (
            f"{len(self.latencies)} writes ({rate:.0f}/s), p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"max {worst:.0f} ms; errors: {errors}"
        )


async def _drive(load: Load) -> Outcome:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    # A client (one connection) per writer: one pool of WRITERS connections costs the
    # client process more per request than the server spends. Plain HTTP on loopback:
    # no TLS context to build 200 times (verify=False).
    clients = [
        httpx.AsyncClient(
            base_url=load.url, headers=load.headers, timeout=60.0, limits=_ONE, verify=False
        )
        for _ in range(load.writers)
    ]
    stop_at = time.perf_counter() + load.seconds

    async def writer(n: int, client: httpx.AsyncClient) -> None:
        path = f"{load.paths[n % len(load.paths)]}/.w{n}"
        exists = False  # the DELETE follows a successful PUT only, so errors never cascade
        while time.perf_counter() < stop_at:
            method, expected = ("DELETE", 204) if exists else ("PUT", 201)
            began = time.perf_counter()
            try:
                body = None if exists else {"data": f"writer {n}\n"}
                answer = await client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                continue
            if answer.status_code == expected:
                latencies.append(time.perf_counter() - began)
                exists = not exists
            else:
                errors[f"{method} {answer.status_code}"] += 1

    began = time.perf_counter()
    try:
        await asyncio.gather(*(writer(n, c) for n, c in enumerate(clients)))
    finally:
        elapsed = time.perf_counter() - began
        for client in clients:
            await client.aclose()
    return Outcome(latencies, dict(errors), elapsed)


_ONE = httpx.Limits(max_connections=1, max_keepalive_connections=1)


def _client_main(conn: Connection) -> None:
    """The client process: runs each :class:`Load` received, sends back its
    :class:`Outcome`; None ends it."""
    while (load := conn.recv()) is not None:
        conn.send(asyncio.run(_drive(load)))


@contextlib.contextmanager
def _client() -> Iterator[Connection]:
    """A client process of its own: its event loop in the server's process would take
    the GIL from the server under test."""
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    process = spawn.Process(target=_client_main, args=(child,), name="bench-writers", daemon=True)
    process.start()
    try:
        yield parent
    finally:
        parent.send(None)
        process.join(10)
        if process.is_alive():
            process.kill()


@contextlib.contextmanager
def _ours(folder: Path) -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """The embedded runtime on SQLite in ``folder``: its URL, a superadmin's headers,
    and the dotfile routes of GROUPS groups."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")}
    environ["JASECI_LIKE__DB__DATA_DIR"] = str(folder)
    environ["JASECI_LIKE__DB__BUSY_TIMEOUT_MS"] = str(BUSY_TIMEOUT_MS)
    environ["JASECI_LIKE__API__PORT"] = "0"  # a free one, not the default 8000
    runtime = Runtime(meta=MetaService.isolated(), environ=environ)
    try:
        runtime.start()
        api: Any = runtime.meta.get_service("api")
        gc: Any = runtime.meta.get_service("group_config").app
        root = gc.system_user()
        admin = gc.sync.users.create("writer@bench.test", "superadmin", user=root)
        token = runtime.meta.loop.run(api.keys.issue(admin.id, actor=root)).token
        headers = {"Authorization": f"Bearer {token}"}
        paths: list[str] = []
        with httpx.Client(base_url=api.url, headers=headers) as client:
            for n in range(GROUPS):
                created = client.put("/v1/groups", json={"name": f"writers-{n}"})
                created.raise_for_status()
                paths.append(f"/v1/groups/{created.json()['id']}/dotfiles")
        yield api.url, headers, paths
    finally:
        runtime.stop()


@contextlib.contextmanager
def _bare(folder: Path) -> Iterator[str]:
    """A bare FastAPI app writing one row per request to an SQLite file, served like ours."""
    from fastapi import FastAPI, Response
    from jaseci_like_services.api.config import ApiConfig
    from jaseci_like_services.api.server import LoopServer
    from sqlalchemy import event, text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'bare.db'}")

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    app = FastAPI()

    @app.put("/g/{group}/dotfiles/{path}", response_model=None)
    async def create(group: str, path: str) -> Response:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO dotfiles (grp, path, data) VALUES (:g, :p, 'x')"),
                {"g": group, "p": path},
            )
        return Response(b"{}", status_code=201, media_type="application/json")

    @app.delete("/g/{group}/dotfiles/{path}", response_model=None)
    async def delete(group: str, path: str) -> Response:
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM dotfiles WHERE grp = :g AND path = :p"), {"g": group, "p": path}
            )
        return Response(status_code=204)

    async def schema() -> None:
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE dotfiles (grp TEXT, path TEXT, data TEXT, UNIQUE (grp, path))")
            )

    settings = ApiConfig.model_validate(
        {"host": "127.0.0.1", "port": 0, "max_body_bytes": 1 << 20}
        | {"keep_alive": 5, "stop_timeout": 1.0}
    )
    loop = RuntimeLoop("bench-bare-writers")
    server = LoopServer(app, settings, loop)
    try:
        loop.run(schema())
        server.start()
        yield server.url
    finally:
        server.stop(2.0)
        loop.run(engine.dispose())
        loop.stop()


@bench("reliability.sqlite_writers", unit="ms p99", better="lower")
def sqlite_writers(ctx: Context) -> tuple[float, float]:
    seconds = 5.0 if ctx.quick else SECONDS
    with tempfile.TemporaryDirectory(prefix="jl-bench-writers-") as folder, _client() as client:
        with _ours(Path(folder)) as (url, headers, paths):
            client.send(Load(url, headers, paths, WRITERS, seconds))
            ours: Outcome = client.recv()
        with _bare(Path(folder)) as bare_url:
            bare_paths = [f"/g/{n}/dotfiles" for n in range(GROUPS)]
            client.send(Load(bare_url, {}, bare_paths, WRITERS, seconds))
            bare: Outcome = client.recv()
    ctx.note(f"{WRITERS} writers for {seconds:.0f}s, create+delete; ours: {ours.summary()}")
    ctx.note(f"bare FastAPI + aiosqlite, no queue: {bare.summary()}")
    if ours.error_count:
        ctx.problem(f"{ours.error_count} write(s) failed: {ours.errors}")
    return ours.percentile(0.99) * 1000, bare.percentile(0.99) * 1000


# -- blips: requests failed while something restarts ----------------------------------------

BLIP_REFRESHES = 20
#: Seconds the client keeps listing after the broker is back (its restart included).
BLIP_SETTLE = 2.0


@dataclass
class _Listing:
    """A client thread listing dotfiles until stopped: answers counted by outcome."""

    url: str
    headers: dict[str, str]
    path: str
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="blip-listing", daemon=True)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30.0) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(self.path).status_code
                except httpx.HTTPError as exc:
                    self.failed[type(exc).__name__] += 1
                    continue
                if status == 200:
                    self.ok += 1
                else:
                    self.failed[str(status)] += 1

    def __enter__(self) -> _Listing:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30.0)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


@contextlib.contextmanager
def _served(folder: Path, settings: dict[str, str]) -> Iterator[tuple[Runtime, _Listing]]:
    """The embedded runtime (extra ``settings`` as env) and a listing client on it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")}
    environ["JASECI_LIKE__DB__DATA_DIR"] = str(folder)
    environ["JASECI_LIKE__API__PORT"] = "0"
    environ.update(settings)
    runtime = Runtime(meta=MetaService.isolated(), environ=environ)
    try:
        runtime.start()
        api: Any = runtime.meta.get_service("api")
        gc: Any = runtime.meta.get_service("group_config").app
        root = gc.system_user()
        admin = gc.sync.users.create("blip@bench.test", "superadmin", user=root)
        token = runtime.meta.loop.run(api.keys.issue(admin.id, actor=root)).token
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=api.url, headers=headers) as client:
            created = client.put("/v1/groups", json={"name": "blips"})
            created.raise_for_status()
        path = f"/v1/groups/{created.json()['id']}/dotfiles"
        with _Listing(api.url, headers, path) as listing:
            yield runtime, listing
    finally:
        runtime.stop()


def _answered_since(listing: _Listing, count: int, timeout: float = 30.0) -> int:
    """Wait (polling the counters) until a request was answered after ``count``."""
    deadline = time.monotonic() + timeout
    while listing.ok + listing.failures <= count:
        if time.monotonic() > deadline:
            raise RuntimeError("the listing client got no answer")
        time.sleep(0.001)
    return listing.ok + listing.failures


@bench(
    "reliability.refresh_blip",
    unit="failed requests",
    better="lower",
    target=Target("value", "<=", 0),
)
def refresh_blip(ctx: Context) -> tuple[float, float]:
    """Requests failed while ``config refresh group_config`` runs BLIP_REFRESHES times
    under a listing client (must be 0); the baseline is the requests answered."""
    from jaseci_like import ConfigApi

    with (
        tempfile.TemporaryDirectory(prefix="jl-bench-refresh-") as folder,
        _served(Path(folder), {}) as (runtime, listing),
    ):
        api = ConfigApi(runtime.hook)
        seen = _answered_since(listing, 0)
        began = time.perf_counter()
        for _ in range(BLIP_REFRESHES):
            api.config_refresh("group_config")
            seen = _answered_since(listing, seen)
        took = time.perf_counter() - began
    ctx.note(
        f"{BLIP_REFRESHES} refreshes of group_config in {took:.2f}s under a listing client: "
        f"{listing.ok} answered 200, failed: {dict(listing.failed) or 'none'}"
    )
    if listing.failures:
        ctx.problem(f"{listing.failures} request(s) failed during refreshes: {listing.failed}")
    return float(listing.failures), float(listing.ok)


@bench(
    "reliability.redis_return_blip",
    unit="failed requests",
    better="lower",
    target=Target("value", "<=", 0),
)
def redis_return_blip(ctx: Context) -> tuple[float, float]:
    """Requests failed to the API while the Redis its Celery task service runs on is
    killed and comes back (must be 0); the baseline is the requests answered."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.servers import RedisServer

    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="jl-bench-redis-") as f:
        settings = {
            "JASECI_LIKE__TASK__MODE": "celery",
            "JASECI_LIKE__TASK__BROKER_URL": server.url,
            "JASECI_LIKE__TASK__WORKERS": "1",
            "JASECI_LIKE__RUNTIME__SUPERVISOR__INTERVAL": "0.1",
            "JASECI_LIKE__RUNTIME__SUPERVISOR__BACKOFF_BASE": "0.05",
        }
        with _served(Path(f), settings) as (runtime, listing):
            state = runtime.supervisor.state("task")
            _answered_since(listing, 0)
            server.kill()
            _until(lambda: state.last_error is not None, "the supervisor sees the task fail")
            down_at = time.perf_counter()
            server.start()
            _until(lambda: state.restarts >= 1, "the task service runs again")
            back = time.perf_counter() - down_at
            _answered_since(listing, listing.ok + listing.failures)
            settle = time.monotonic() + BLIP_SETTLE
            _until(lambda: time.monotonic() > settle, "the client lists on")
    ctx.note(
        f"Redis killed, restarted; task service back {back:.2f}s after: "
        f"{listing.ok} answered 200, failed: {dict(listing.failed) or 'none'}"
    )
    if listing.failures:
        ctx.problem(f"{listing.failures} request(s) failed around the Redis restart")
    return float(listing.failures), float(listing.ok)


def _until(done: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {timeout}s, in vain, until {what}")
        time.sleep(0.01)
