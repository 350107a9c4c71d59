"""API figures: requests per second through the whole stack, against two baselines.

``api.list_rps`` (SQLite) and ``api.list_rps_postgres``: ``GET
/v1/groups/{group}/dotfiles`` (20 dotfiles) through the running embedded runtime:
the API key check (remembered while no change to keys or users is committed, see
``jaseci_like_services.api.keys``), group_config's authorization and listing (ONE
statement: one call on the SQLite reader, one round trip to PostgreSQL), the
mapping to v1 bodies, our middlewares. The baseline is a bare FastAPI app with
the same route returning the same JSON bytes (taken from our answer).

``api.vs_handwritten_sqlite`` / ``_postgres``: the same listing against the peer
app of ``benchmarks/api_peer.py``, FastAPI and SQLAlchemy written by hand over the
same database (key lookup by hash, membership check, usage, page), answering the
same bytes. ``api.write_rps_postgres``: dotfile creates (``PUT``) through ours
against the peer's, a fresh group each round.

Every app is served by uvicorn the same way (a socket bound first, ``Server.serve``
on a runtime loop of this process). One client process drives them all: a fixed
number of requests over a few keep-alive httpx connections, rounds alternating.
The notes give the database round trips per request of ours and of the peer,
counted with SQLAlchemy engine events (``tests/round_trips.py``).
"""

from __future__ import annotations

import contextlib
import itertools
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
from benchmarks.timing import median, spread
from jaseci_like import MetaService, Runtime
from jaseci_like.loop import RuntimeLoop

DOTFILES = 20
CONNECTIONS = 4
GROUP = "bench"
PATH = f"/v1/groups/{GROUP}/dotfiles"
#: Limits of the write figure, the same in ours and the peer: never reached.
WRITE_LIMITS = {"max_dotfiles": 100_000, "max_bytes": 100_000_000}
#: Requests whose round trips the notes count.
COUNTED = 100


@dataclass
class Served:
    runtime: Runtime
    url: str
    token: str
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def engine(self) -> Any:
        return self.runtime.meta.get_service("db").app

    @property
    def db_url(self) -> str:
        url: str = self.engine.url.render_as_string(hide_password=False)
        return url


@contextlib.contextmanager
def _runtime(db_url: str | None = None, limits: dict[str, int] | None = None) -> Iterator[Served]:
    """The embedded runtime (SQLite in a temporary folder, or ``db_url``), a superadmin's
    key, and a group with dotfiles."""
    folder = tempfile.TemporaryDirectory(prefix="jl-bench-api-")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")}
    environ["JASECI_LIKE__DB__DATA_DIR"] = folder.name
    environ["JASECI_LIKE__API__PORT"] = "0"  # a free one, not the default 8000
    for key, value in (limits or {}).items():
        environ[f"JASECI_LIKE__GROUP_CONFIG__{key.upper()}"] = str(value)
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
def _serve(app: Any, name: str) -> Iterator[tuple[str, RuntimeLoop]]:
    """``app`` served by uvicorn as ours is, on a loop of its own: its URL and loop."""
    from jaseci_like_services.api.config import ApiConfig
    from jaseci_like_services.api.server import LoopServer

    settings = ApiConfig.model_validate(
        {"host": "127.0.0.1", "port": 0, "max_body_bytes": 1 << 20}
        | {"keep_alive": 5, "stop_timeout": 1.0}
    )
    loop = RuntimeLoop(name)
    server = LoopServer(app, settings, loop)
    try:
        server.start()
        yield server.url, loop
    finally:
        server.stop(2.0)
        loop.stop()


@contextlib.contextmanager
def _bare(body: bytes) -> Iterator[str]:
    """A bare FastAPI app answering ``body`` at the same path, served the same way."""
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.get("/v1/groups/{group}/dotfiles")
    async def listing(group: str) -> Response:
        return Response(body, media_type="application/json")

    with _serve(app, "bench-bare-api") as (url, _):
        yield url


@dataclass
class Peer:
    url: str
    engine: Any


@contextlib.contextmanager
def _peer(served: Served, limits: dict[str, int] | None = None) -> Iterator[Peer]:
    """The hand-written app (``benchmarks/api_peer.py``) over ours's database."""
    from jaseci_like_services.group_config.types import Limits
    from sqlalchemy.ext.asyncio import create_async_engine

    from benchmarks.api_peer import create_peer_app

    chosen = Limits(**(limits or {}))
    # What its author would write: the driver's defaults, a pool of ours's size.
    engine = create_async_engine(served.db_url, pool_size=5)
    app = create_peer_app(engine, chosen.max_dotfiles, chosen.max_bytes)
    with _serve(app, "bench-peer-api") as (url, loop):
        try:
            yield Peer(url, engine)
        finally:
            loop.run(engine.dispose())


# -- the client process -------------------------------------------------------------------------


def _get_many(client: httpx.Client, path: str, count: int, expect: bytes, wrong: list[str]) -> None:
    for _ in range(count):
        answer = client.get(path)
        if answer.status_code != 200 or answer.content != expect:
            wrong.append(f"{answer.status_code} {answer.content[:80]!r}")


def _put_many(client: httpx.Client, path: str, count: int, prefix: str, wrong: list[str]) -> None:
    for n in range(count):
        answer = client.put(f"{path}/.w/{prefix}-{n}", json={"data": f"export W={n}\n"})
        if answer.status_code != 201:
            wrong.append(f"{answer.status_code} {answer.content[:80]!r}")


def _client_main(conn: Connection) -> None:
    """The client process: for each ``(method, url, headers, requests, path, expect)``
    received, a round of ``requests`` over CONNECTIONS keep-alive connections (a
    thread each): GETs of ``path`` answering ``expect``, or PUTs of new dotfiles
    under ``path``; sends back ``(requests/s, wrong answers)``. None ends it."""
    pools: dict[str, list[httpx.Client]] = {}
    while (job := conn.recv()) is not None:
        method, url, headers, requests, path, expect = job
        clients = pools.get(url)
        if clients is None:
            clients = pools[url] = [
                httpx.Client(base_url=url, headers=headers) for _ in range(CONNECTIONS)
            ]
        wrong: list[str] = []
        share = requests // CONNECTIONS
        threads = [
            threading.Thread(
                target=_get_many if method == "GET" else _put_many,
                args=(c, path, share, expect if method == "GET" else f"{n}", wrong),
            )
            for n, c in enumerate(clients)
        ]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        conn.send((share * CONNECTIONS / (time.perf_counter() - began), wrong))


Round = Callable[[], float]


class _Client:
    """A client process, and rounds driven by it. The client runs in a process of its
    own, as a real one does: its threads in the server's process would take the GIL
    from the server under test whenever it waits in C (a socket, an SQLite
    statement) and skew every server."""

    def __init__(self, pipe: Connection) -> None:
        self._pipe = pipe

    def _round(self, job: tuple[Any, ...]) -> float:
        self._pipe.send(job)
        rate, wrong = self._pipe.recv()
        if wrong:
            raise AssertionError(f"{len(wrong)} wrong answer(s), e.g. {wrong[0]}")
        return float(rate)

    def gets(self, url: str, headers: dict[str, str], requests: int, expect: bytes) -> Round:
        return lambda: self._round(("GET", url, headers, requests, PATH, expect))

    def puts(
        self, url: str, headers: dict[str, str], requests: int, groups: Iterator[str]
    ) -> Round:
        """Each round creates ``requests`` dotfiles in the next group of ``groups``."""
        return lambda: self._round(
            ("PUT", url, headers, requests, f"/v1/groups/{next(groups)}/dotfiles", b"")
        )


@contextlib.contextmanager
def _client() -> Iterator[_Client]:
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_client_main, args=(child,), name="bench-api-client", daemon=True
    )
    process.start()
    try:
        yield _Client(parent)
    finally:
        parent.send(None)
        process.join(10)
        if process.is_alive():
            process.kill()


def _rounds(rounds: int, *makers: Round) -> list[list[float]]:
    """``rounds`` samples of each, the order of the makers rotating from round to round."""
    samples: list[list[float]] = [[] for _ in makers]
    for n in range(rounds):
        for k in range(len(makers)):
            which = (n + k) % len(makers)
            samples[which].append(makers[which]())
    return samples


# -- round trips --------------------------------------------------------------------------------


def _round_trips(
    url: str, headers: dict[str, str], engine: Any, send: Callable[..., Any], ours: bool
) -> str:
    """Round trips per request of the requests ``send(client, n)`` makes, counted on
    ``engine``: on ours, those of the requests only, not the runtime's own work (the
    peer's engine does nothing else, and returns its connection after the answer)."""
    from tests.round_trips import RoundTrips, in_http_request

    with httpx.Client(base_url=url, headers=headers) as client:
        for n in range(5):
            send(client, -1 - n)  # warm: pooled connections, prepared statements
        with RoundTrips(engine, only=in_http_request if ours else None) as trips:
            for n in range(COUNTED):
                send(client, n)
    kinds = {kind: trips.calls.count(kind) / COUNTED for kind in dict.fromkeys(trips.calls)}
    shown = ", ".join(f"{kind} {count:g}" for kind, count in kinds.items())
    return f"{trips.count / COUNTED:g} ({shown})"


def _listing(client: httpx.Client, n: int) -> None:
    client.get(PATH).raise_for_status()


# -- listings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listings:
    """Paired samples of one backend's listing: ours, bare FastAPI, the peer."""

    ours: list[float]
    bare: list[float]
    peer: list[float]


_LISTINGS: dict[str, Listings] = {}


def _listings(ctx: Context, backend: str) -> Listings:
    """The listing rounds of ``backend``, measured once per run for its two figures."""
    found = _LISTINGS.get(backend)
    if found is not None:
        return found
    if backend == "sqlite":
        found = _measure_listings(ctx, backend, None)
    else:
        from benchmarks.group_config import _postgres_server

        server = _postgres_server()
        database = f"bench_api_{uuid.uuid4().hex}"
        url = server.create_database(database)
        try:
            found = _measure_listings(ctx, backend, url)
        finally:
            server.drop_database(database)
    _LISTINGS[backend] = found
    return found


def _measure_listings(ctx: Context, backend: str, db_url: str | None) -> Listings:
    requests = 200 if ctx.quick else 800
    with (
        _runtime(db_url) as served,
        _bare(served.body) as bare_url,
        _peer(served) as peer,
        _client() as client,
    ):
        ours = client.gets(served.url, served.headers, requests, served.body)
        bare = client.gets(bare_url, served.headers, requests, served.body)
        theirs = client.gets(peer.url, served.headers, requests, served.body)
        ours(), bare(), theirs()  # warm: connections, caches, prepared statements
        a, b, c = _rounds(ctx.rounds(7), ours, bare, theirs)
        auth_ms, search_ms = _database_floor(served, 50 if ctx.quick else 300)
        trips_ours = _round_trips(served.url, served.headers, served.engine, _listing, True)
        trips_peer = _round_trips(peer.url, served.headers, peer.engine, _listing, False)
    ctx.note(
        f"{backend}: {requests} requests per round over {CONNECTIONS} connections of a "
        f"client process, {DOTFILES} dotfiles ({len(served.body)} bytes); ours {spread(a)}, "
        f"bare {spread(b)}, hand-written {spread(c)} req/s"
    )
    ctx.note(
        f"{backend}: database floor (awaited directly, no HTTP): key check "
        f"{auth_ms * 1000:.0f} us + group_config search {search_ms * 1000:.0f} us per "
        f"request; bare answers a request in {1000 / median(b):.2f} ms"
    )
    ctx.note(
        f"{backend}: database round trips per listing (engine events): ours {trips_ours}; "
        f"hand-written {trips_peer}"
    )
    return Listings(a, b, c)


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


@bench("api.list_rps", unit="req/s", better="higher", target=Target("ratio", ">=", 0.7))
def list_rps(ctx: Context) -> tuple[float, float]:
    """The embedded default (SQLite), against bare FastAPI."""
    found = _listings(ctx, "sqlite")
    return median(found.ours), median(found.bare)


@bench("api.list_rps_postgres", unit="req/s", better="higher", target=Target("ratio", ">=", 0.6))
def list_rps_postgres(ctx: Context) -> tuple[float, float]:
    """PostgreSQL (asyncpg), against bare FastAPI."""
    found = _listings(ctx, "postgres")
    return median(found.ours), median(found.bare)


@bench(
    "api.vs_handwritten_sqlite", unit="req/s", better="higher", target=Target("ratio", ">=", 1.5)
)
def vs_handwritten_sqlite(ctx: Context) -> tuple[float, float]:
    """The SQLite listing, against the hand-written FastAPI + SQLAlchemy app."""
    found = _listings(ctx, "sqlite")
    return median(found.ours), median(found.peer)


@bench(
    "api.vs_handwritten_postgres",
    unit="req/s",
    better="higher",
    target=Target("ratio", ">=", 1.5),
)
def vs_handwritten_postgres(ctx: Context) -> tuple[float, float]:
    """The PostgreSQL listing, against the hand-written FastAPI + SQLAlchemy app."""
    found = _listings(ctx, "postgres")
    return median(found.ours), median(found.peer)


# -- writes -------------------------------------------------------------------------------------


@bench("api.write_rps_postgres", unit="req/s", better="higher", target=Target("ratio", ">=", 1.0))
def write_rps_postgres(ctx: Context) -> tuple[float, float]:
    """Dotfile creates (``PUT``) on PostgreSQL, against the hand-written app; each round
    writes into a group of its own, so both count and check equal groups."""
    from benchmarks.group_config import _postgres_server

    server = _postgres_server()
    database = f"bench_api_{uuid.uuid4().hex}"
    url = server.create_database(database)
    requests = 200 if ctx.quick else 400
    rounds = ctx.rounds(7)
    try:
        with (
            _runtime(url, WRITE_LIMITS) as served,
            _peer(served, WRITE_LIMITS) as peer,
            _client() as client,
        ):
            names = [f"w{n}" for n in range(2 * (rounds + 2))]
            with httpx.Client(base_url=served.url, headers=served.headers) as admin:
                for name in names:
                    admin.put("/v1/groups", json={"name": name}).raise_for_status()
            ours_groups, peer_groups = iter(names[0::2]), iter(names[1::2])
            ours = client.puts(served.url, served.headers, requests, ours_groups)
            theirs = client.puts(peer.url, served.headers, requests, peer_groups)
            ours(), theirs()  # warm
            a, b = _rounds(rounds, ours, theirs)
            count = itertools.count()

            def create(http: httpx.Client, n: int) -> None:
                path = f"{PATH}/.t/{next(count)}"
                http.put(path, json={"data": "x"}).raise_for_status()

            trips_ours = _round_trips(served.url, served.headers, served.engine, create, True)
            trips_peer = _round_trips(peer.url, served.headers, peer.engine, create, False)
    finally:
        server.drop_database(database)
    ctx.note(
        f"{requests} creates per round over {CONNECTIONS} connections; ours {spread(a)}, "
        f"hand-written {spread(b)} req/s"
    )
    ctx.note(
        f"round trips per create (engine events): ours {trips_ours}; hand-written {trips_peer}"
    )
    return median(a), median(b)
