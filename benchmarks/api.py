"""API figures: requests per second through the whole stack against a bare FastAPI app.

``api.list_rps``: ``GET /v1/groups/{group}/dotfiles`` (20 dotfiles) through the
running embedded runtime: the API key check (one read), group_config's
authorization and listing (one transaction), the mapping to v1 bodies, our
middlewares. The baseline is a bare FastAPI app with the same route returning
the same JSON bytes (taken from our answer), served by uvicorn the same way (a
socket bound first, ``Server.serve`` on a runtime loop of this process). One
client process drives both: a fixed number of requests over a few keep-alive
httpx connections, rounds alternating. The notes also give the time the two
database calls take when awaited directly on the loop, with no HTTP: the floor
of ours (the key check is usually answered from the verified-key cache, see
``jaseci_like_services.api.keys``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import httpx

from benchmarks.registry import Context, Target, bench
from benchmarks.timing import median, paired, spread
from jaseci_like import MetaService, Runtime
from jaseci_like.loop import RuntimeLoop

DOTFILES = 20
CONNECTIONS = 4
GROUP = "bench"
PATH = f"/v1/groups/{GROUP}/dotfiles"


@dataclass
class Served:
    runtime: Runtime
    url: str
    token: str
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextlib.contextmanager
def _runtime(db_url: str | None = None) -> Iterator[Served]:
    """The embedded runtime (SQLite in a temporary folder, or ``db_url``), a superadmin's
    key, and a group with dotfiles."""
    folder = tempfile.TemporaryDirectory(prefix="jl-bench-api-")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")}
    environ["JASECI_LIKE__DB__DATA_DIR"] = folder.name
    environ["JASECI_LIKE__API__PORT"] = "0"  # a free one, not the default 8000
    if db_url is not None:
        environ["JASECI_LIKE__DB__URL"] = db_url
    runtime = Runtime(meta=MetaService.isolated(), environ=environ)
    try:
        runtime.start()
        api: Any = runtime.meta.get_service("api")
        gc: Any = runtime.meta.get_service("group_config").app
        root = gc.system_user()
        admin = gc.sync.users.create("admin@bench.test", "superadmin", user=root)
        token = runtime.meta.loop.run(api.keys.issue(admin.id, actor=root)).token
        served = Served(runtime, api.url, token, b"")
        with httpx.Client(base_url=api.url, headers=served.headers) as client:
            client.put("/v1/groups", json={"name": GROUP}).raise_for_status()
            for n in range(DOTFILES):
                body = {"data": f"export VAR_{n}=value-{n}\n" * 3}
                client.put(f"{PATH}/.rc{n}", json=body).raise_for_status()
            listing = client.get(PATH)
            listing.raise_for_status()
        served.body = listing.content
        yield served
    finally:
        runtime.stop()
        folder.cleanup()


@contextlib.contextmanager
def _bare(body: bytes) -> Iterator[str]:
    """A bare FastAPI app answering ``body`` at the same path, served the same way."""
    from fastapi import FastAPI, Response
    from jaseci_like_services.api.config import ApiConfig
    from jaseci_like_services.api.server import LoopServer

    app = FastAPI()

    @app.get("/v1/groups/{group}/dotfiles")
    async def listing(group: str) -> Response:
        return Response(body, media_type="application/json")

    settings = ApiConfig.model_validate(
        {"host": "127.0.0.1", "port": 0, "max_body_bytes": 1 << 20}
        | {"keep_alive": 5, "stop_timeout": 1.0}
    )
    loop = RuntimeLoop("bench-bare-api")
    server = LoopServer(app, settings, loop)
    server.start()
    try:
        yield server.url
    finally:
        server.stop(2.0)
        loop.stop()


def _get_many(client: httpx.Client, count: int, expect: bytes, wrong: list[str]) -> None:
    for _ in range(count):
        answer = client.get(PATH)
        if answer.status_code != 200 or answer.content != expect:
            wrong.append(f"{answer.status_code} {answer.content[:80]!r}")


def _client_main(conn: Connection) -> None:
    """The client process: for each ``(url, headers, requests, expect)`` received, a
    round of ``requests`` GETs over CONNECTIONS keep-alive connections (one thread
    each); sends back ``(requests/s, wrong answers)``. None ends it."""
    pools: dict[str, list[httpx.Client]] = {}
    while (job := conn.recv()) is not None:
        url, headers, requests, expect = job
        clients = pools.get(url)
        if clients is None:
            clients = pools[url] = [
                httpx.Client(base_url=url, headers=headers) for _ in range(CONNECTIONS)
            ]
        wrong: list[str] = []
        share = requests // CONNECTIONS
        threads = [
            threading.Thread(target=_get_many, args=(c, share, expect, wrong)) for c in clients
        ]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        conn.send((share * CONNECTIONS / (time.perf_counter() - began), wrong))


@contextlib.contextmanager
def _client() -> Iterator[Callable[[str, dict[str, str], int, bytes], Callable[[], float]]]:
    """A client process, and a maker of rounds driven by it: ``make(url, headers,
    requests, expect)()`` runs a round and gives its requests/s.

    The client runs in a process of its own, as a real one does: its threads in
    the server's process would take the GIL from the server under test whenever
    it waits in C (a socket, an SQLite statement) and skew both servers."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_client_main, args=(child,), name="bench-api-client", daemon=True
    )
    process.start()

    def make(
        url: str, headers: dict[str, str], requests: int, expect: bytes
    ) -> Callable[[], float]:
        def round_() -> float:
            parent.send((url, headers, requests, expect))
            rate, wrong = parent.recv()
            if wrong:
                raise AssertionError(f"{len(wrong)} wrong answer(s), e.g. {wrong[0]}")
            return float(rate)

        return round_

    try:
        yield make
    finally:
        parent.send(None)
        process.join(10)
        if process.is_alive():
            process.kill()


def _database_floor(served: Served, calls: int) -> tuple[float, float]:
    """Milliseconds per call of the two database calls a listing makes (the key check,
    group_config's search), awaited directly on the runtime loop."""
    api: Any = served.runtime.meta.get_service("api")
    gc: Any = served.runtime.meta.get_service("group_config").app

    async def timed(make: Callable[[], Coroutine[Any, Any, Any]]) -> float:
        began = time.perf_counter()
        for _ in range(calls):
            await make()
        return (time.perf_counter() - began) * 1000 / calls

    async def both() -> tuple[float, float]:
        user = await api.keys.authenticate(served.token)
        auth = await timed(lambda: api.keys.authenticate(served.token))
        search = await timed(lambda: gc.dotfiles.search(GROUP, user=user))
        return auth, search

    result: tuple[float, float] = served.runtime.meta.loop.run(both())
    return result


@bench("api.list_rps", unit="req/s", better="higher", target=Target("ratio", ">=", 0.5))
def list_rps(ctx: Context) -> tuple[float, float]:
    """The embedded default: SQLite."""
    return _list_rps(ctx, None)


@bench("api.list_rps_postgres", unit="req/s", better="higher")
def list_rps_postgres(ctx: Context) -> tuple[float, float]:
    """The same on PostgreSQL (asyncpg): no verified-key cache there, so every request
    reads its key."""
    from benchmarks.group_config import _postgres_server

    server = _postgres_server()
    database = f"bench_api_{uuid.uuid4().hex}"
    url = server.create_database(database)
    try:
        return _list_rps(ctx, url)
    finally:
        server.drop_database(database)


def _list_rps(ctx: Context, db_url: str | None) -> tuple[float, float]:
    requests = 200 if ctx.quick else 800
    with _runtime(db_url) as served, _bare(served.body) as bare_url, _client() as rounds:
        ours = rounds(served.url, served.headers, requests, served.body)
        baseline = rounds(bare_url, served.headers, requests, served.body)
        ours(), baseline()  # warm both: connections, caches, compiled statements
        a, b = paired(ours, baseline, ctx.rounds(7))
        auth_ms, search_ms = _database_floor(served, 50 if ctx.quick else 300)
    ctx.note(
        f"{requests} requests per round over {CONNECTIONS} connections of a client process, "
        f"{DOTFILES} dotfiles ({len(served.body)} bytes); ours {spread(a)}, "
        f"bare {spread(b)} req/s"
    )
    ctx.note(
        f"database floor (awaited directly, no HTTP): key check {auth_ms * 1000:.0f} us + "
        f"group_config search {search_ms * 1000:.0f} us per request; bare answers a "
        f"request in {1000 / median(b):.2f} ms"
    )
    return median(a), median(b)
