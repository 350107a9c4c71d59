"""Group-config figures: transactions per operation, throughput against hand-written
SQLAlchemy on SQLite and PostgreSQL, and the cost of the blocking facade.

The baseline of each throughput figure issues the same statements our
operation issues (resolve and lock the group, the usage check, the insert or
select), written directly against the tables with SQLAlchemy Core, in the same
run, on the same engine, alternating rounds with ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from jaseci_like_services.db import engine as engines
from jaseci_like_services.db import migrate
from jaseci_like_services.group_config import (
    CurrentUser,
    DotfileChanges,
    DotfileSpec,
    GroupConfig,
    Limits,
    Role,
)
from jaseci_like_services.group_config.models import dotfiles, groups
from jaseci_like_services.group_config.plugin import GroupConfigService
from prometheus_client import CollectorRegistry
from sqlalchemy import bindparam, case, delete, event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.registry import Context, Target, bench
from benchmarks.timing import median, spread
from jaseci_like.loop import RuntimeLoop
from jaseci_like.repository import transaction_engines, utcnow

T = TypeVar("T")
#: Big enough that the benchmark never meets the limits (the checks still run).
LIMITS = Limits(max_dotfiles=10**7, max_bytes=10**12)
_PG: Any = None


def _postgres_server() -> Any:
    """One PostgreSQL cluster for the whole run (tests/servers.py), stopped at exit."""
    global _PG
    if _PG is None:
        from tests.servers import PostgresServer

        server = PostgresServer()
        server.start()
        _PG = server
    return _PG


@dataclass
class Setup:
    backend: str
    loop: RuntimeLoop
    engine: AsyncEngine
    app: GroupConfig
    admin: CurrentUser
    ours: uuid.UUID
    base: uuid.UUID

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro, timeout=600)


@contextlib.contextmanager
def _database(backend: str) -> Iterator[Setup]:
    """A fresh database with the tables, an admin, and one group each for ours and the baseline."""
    folder = tempfile.TemporaryDirectory(prefix="jl-bench-gc-")
    database = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{Path(folder.name) / 'bench.db'}"
    else:
        database = f"bench_{uuid.uuid4().hex}"
        url = _postgres_server().create_database(database)
    loop = RuntimeLoop(f"bench-{backend}")
    engine = engines.create_engine(make_url(url), echo=False, pool_size=5, busy_timeout_ms=5000)
    try:
        loop.run(migrate.upgrade(engine, [GroupConfigService.migrations]))
        app = GroupConfig(engine, limits=LIMITS, registry=CollectorRegistry(), loop=loop)
        root = CurrentUser.system("bench")

        async def seed() -> tuple[CurrentUser, uuid.UUID, uuid.UUID]:
            await app.domains.create("bench", user=root)
            admin = await app.users.create("admin@bench.test", Role.ADMIN, user=root)
            ours = await app.groups.create("ours", user=root)
            base = await app.groups.create("base", user=root)
            return admin.identity(), ours.id, base.id

        admin, ours, base = loop.run(seed())
        yield Setup(backend, loop, engine, app, admin, ours, base)
    finally:
        loop.run(engine.dispose())
        loop.stop()
        if database is not None:
            _postgres_server().drop_database(database)
        folder.cleanup()


# -- the hand-written baseline ----------------------------------------------------------------

_GROUP = select(groups.c.id, groups.c.domain_name, groups.c.name, groups.c.created_at).where(
    groups.c.id == bindparam("gid")
)
_GROUP_LOCKED = _GROUP.with_for_update(of=groups)
_IN_PATHS = dotfiles.c.path.in_(bindparam("paths", expanding=True))
_USAGE = select(
    func.count(),
    func.coalesce(func.sum(dotfiles.c.path_bytes + dotfiles.c.data_bytes), 0),
    func.coalesce(func.sum(case((_IN_PATHS, 1), else_=0)), 0),
    func.coalesce(func.sum(case((_IN_PATHS, dotfiles.c.data_bytes), else_=0)), 0),
).where(dotfiles.c.group_id == bindparam("gid"), dotfiles.c.status == "active")
_INSERT = insert(dotfiles).returning(*dotfiles.c)
_GET = select(dotfiles).where(
    dotfiles.c.group_id == bindparam("gid"),
    dotfiles.c.path == bindparam("path"),
    dotfiles.c.status == "active",
)
_PAGE = (
    select(dotfiles)
    .where(dotfiles.c.group_id == bindparam("gid"), dotfiles.c.status == "active")
    .order_by(dotfiles.c.id)
    .limit(51)
    .offset(0)
)


async def _base_group(conn: Any, gid: uuid.UUID, domain: str, lock: bool) -> Any:
    row = (await conn.execute(_GROUP_LOCKED if lock else _GROUP, {"gid": gid})).first()
    if row is None or row.domain_name != domain:
        raise LookupError(gid)
    return row


async def base_create(engine: AsyncEngine, gid: uuid.UUID, domain: str, path: str) -> Any:
    async with engine.connect() as conn, conn.begin():
        await _base_group(conn, gid, domain, lock=True)
        count, size, same, _ = (await conn.execute(_USAGE, {"gid": gid, "paths": [path]})).one()
        data = "export PATH=$HOME/bin:$PATH\n"
        if same or count >= LIMITS.max_dotfiles or size + len(path) + len(data) > LIMITS.max_bytes:
            raise ValueError(path)
        now = utcnow()
        values = {
            "group_id": gid,
            "path": path,
            "permission": "644",
            "data": data,
            "status": "active",
            "path_bytes": len(path.encode()),
            "data_bytes": len(data.encode()),
            "created_at": now,
            "updated_at": now,
        }
        return (await conn.execute(_INSERT, values)).one()


async def base_get(engine: AsyncEngine, gid: uuid.UUID, domain: str, path: str) -> Any:
    async with engine.connect() as conn, conn.begin():
        await _base_group(conn, gid, domain, lock=False)
        row = (await conn.execute(_GET, {"gid": gid, "path": path})).first()
        if row is None:
            raise LookupError(path)
        return row


async def base_list(engine: AsyncEngine, gid: uuid.UUID, domain: str) -> Any:
    async with engine.connect() as conn, conn.begin():
        await _base_group(conn, gid, domain, lock=False)
        usage = (await conn.execute(_USAGE, {"gid": gid, "paths": []})).one()
        return usage, (await conn.execute(_PAGE, {"gid": gid})).all()


# -- throughput -------------------------------------------------------------------------------

DATA = "export PATH=$HOME/bin:$PATH\n"


async def _interleaved(
    count: int,
    ours: Callable[[int], Awaitable[object]],
    base: Callable[[int], Awaitable[object]],
) -> tuple[float, float]:
    """Seconds ours and the baseline took for ``count`` operations each, run one after
    the other in turn (who goes first alternates), so a busy machine slows both alike."""
    clock = time.perf_counter
    spent = [0.0, 0.0]
    for n in range(count):
        order = ((0, ours), (1, base)) if n % 2 == 0 else ((1, base), (0, ours))
        for side, op in order:
            began = clock()
            await op(n)
            spent[side] += clock() - began
    return spent[0], spent[1]


def _throughput(ctx: Context, backend: str, kind: str) -> tuple[float, float]:
    count = 100 if ctx.quick else 200
    rounds = ctx.rounds(9, 3)
    with _database(backend) as s:
        app, engine, admin, domain = s.app, s.engine, s.admin, "bench"
        seeded = [DotfileSpec(f".rc{n:02}", DATA) for n in range(50)]
        if kind != "create":
            for gid in (s.ours, s.base):
                s.run(app.dotfiles.bulk_create(gid, seeded, user=admin))
        round_no = [0]

        async def clear(gid: uuid.UUID) -> None:
            async with engine.begin() as conn:
                await conn.execute(delete(dotfiles).where(dotfiles.c.group_id == gid))

        def ours_op(n: int) -> Awaitable[object]:
            if kind == "create":
                spec = DotfileSpec(f".f{round_no[0]}-{n}", DATA)
                return app.dotfiles.create(s.ours, spec, user=admin)
            if kind == "get":
                return app.dotfiles.get(s.ours, seeded[n % 50].path, user=admin)
            return app.dotfiles.search(s.ours, user=admin)

        def base_op(n: int) -> Awaitable[object]:
            if kind == "create":
                return base_create(engine, s.base, domain, f".f{round_no[0]}-{n}")
            if kind == "get":
                return base_get(engine, s.base, domain, seeded[n % 50].path)
            return base_list(engine, s.base, domain)

        def measure() -> tuple[float, float]:
            if kind == "create":
                s.run(clear(s.ours))
                s.run(clear(s.base))
                round_no[0] += 1
            return s.run(_interleaved(count, ours_op, base_op))

        measure()  # warm both: pools filled, statements compiled
        a: list[float] = []
        b: list[float] = []
        for _ in range(rounds):
            ours_s, base_s = measure()
            a.append(count / ours_s)
            b.append(count / base_s)
        listed = s.run(app.dotfiles.search(s.ours, user=admin)).page.items
        if kind != "create" and len(listed) != 50:
            ctx.problem(f"the measured group holds {len(listed)} dotfiles, not 50")
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    ctx.note(
        f"{rounds} rounds of {count} operations each, ours and base interleaved; "
        f"ops/s ours {spread(a)}, base {spread(b)}; ratio per round {spread(ratios)}"
    )
    # The round with the median ratio: both sides of a round saw the same machine.
    pick = sorted(range(rounds), key=lambda i: ratios[i])[rounds // 2]
    return a[pick], b[pick]


def _register_throughput() -> None:
    for kind in ("create", "get", "list"):
        for backend in ("sqlite", "postgres"):

            def figure(
                ctx: Context, kind: str = kind, backend: str = backend
            ) -> tuple[float, float]:
                return _throughput(ctx, backend, kind)

            figure.__doc__ = f"{kind} on {backend}: ops/s, ours / hand-written SQLAlchemy"
            bench(
                f"group_config.{kind}_{backend}",
                unit="ops/s",
                better="higher",
                target=Target("ratio", ">=", 0.8),
            )(figure)


_register_throughput()


# -- one transaction per operation ----------------------------------------------------------


def _every_operation(s: Setup) -> list[Callable[[], Coroutine[Any, Any, object]]]:
    """Each standard dotfile operation once, in an order where each one succeeds."""
    app, g, u = s.app, s.ours, s.admin
    return [
        lambda: app.dotfiles.create(g, DotfileSpec(".a", "a"), user=u),
        lambda: app.dotfiles.get(g, ".a", user=u),
        lambda: app.dotfiles.search(g, user=u),
        lambda: app.dotfiles.usage(g, user=u),
        lambda: app.dotfiles.update(g, ".a", DotfileChanges(data="b"), user=u),
        lambda: app.dotfiles.bulk_create(g, [DotfileSpec(".b", "b")], user=u),
        lambda: app.dotfiles.bulk_upsert(g, [DotfileSpec(".b", "c")], user=u),
        lambda: app.dotfiles.batch_update(
            g, [".a", ".b"], DotfileChanges(permission="600"), user=u
        ),
        lambda: app.dotfiles.delete(g, ".a", user=u),
        lambda: app.dotfiles.batch_delete(g, [".b"], user=u),
        lambda: app.dotfiles.purge(g, ".a", user=u),
        lambda: app.dotfiles.batch_purge(g, [".b"], user=u),
    ]


@bench(
    "group_config.transactions_per_op",
    unit="BEGINs/op",
    better="lower",
    target=Target("value", "<=", 1.0),
)
def transactions_per_op(ctx: Context) -> tuple[float, float]:
    """BEGINs per service operation (every standard operation, on SQLite and PostgreSQL);
    baseline: the hand-written create/get/list, which open one each by construction."""
    ours_ops = base_ops = 0
    ours_begins = base_begins = 0
    backends = ("sqlite",) if ctx.quick else ("sqlite", "postgres")
    for backend in backends:
        with _database(backend) as s:
            begins = [0]

            def count(conn: Any, begins: list[int] = begins) -> None:
                begins[0] += 1

            # The reads of an SQLite file run on the reader paired with the engine.
            counted = transaction_engines(s.engine)
            for target in counted:
                event.listen(target, "begin", count)
            calls = _every_operation(s)
            for call in calls:
                s.run(call())
            ours_ops += len(calls)
            ours_begins += begins[0]
            begins[0] = 0
            for n in range(3):
                s.run(base_create(s.engine, s.base, "bench", f".x{n}"))
                s.run(base_get(s.engine, s.base, "bench", f".x{n}"))
                s.run(base_list(s.engine, s.base, "bench"))
            base_ops += 9
            base_begins += begins[0]
            for target in counted:
                event.remove(target, "begin", count)
    value = ours_begins / ours_ops
    if value != 1.0:
        ctx.problem(f"{ours_begins} transactions for {ours_ops} operations")
    ctx.note(f"{ours_ops} operations ({', '.join(backends)}): {ours_begins} BEGINs")
    return value, base_begins / base_ops


# -- the blocking facade ----------------------------------------------------------------------


@bench(
    "group_config.portal_overhead",
    unit="µs/call",
    better="lower",
    target=Target("ratio", "<=", 1.5),
)
def portal_overhead(ctx: Context) -> tuple[float, float]:
    """µs a synchronous caller adds per operation (``app.sync.dotfiles.get`` from a thread,
    minus the same ``await app.dotfiles.get`` inside the loop); baseline: a bare
    ``asyncio.run_coroutine_threadsafe`` round trip of a no-op coroutine to the same loop."""
    count = 500 if ctx.quick else 1500
    with _database("sqlite") as s:
        app, g, u = s.app, s.ours, s.admin
        s.run(app.dotfiles.create(g, DotfileSpec(".rc", DATA), user=u))
        facade = app.sync.dotfiles

        async def in_loop() -> float:
            began = time.perf_counter()
            await app.dotfiles.get(g, ".rc", user=u)
            return time.perf_counter() - began

        async def noop() -> None:
            return None

        event_loop = s.run(_running_loop())
        samples: dict[str, list[float]] = {"sync": [], "raw": [], "awaited": [], "bare": []}

        def sync_call() -> None:
            began = time.perf_counter()
            facade.get(g, ".rc", user=u)
            samples["sync"].append(time.perf_counter() - began)

        def raw_call() -> None:
            # The primitive itself carrying the same operation: what any hop costs.
            began = time.perf_counter()
            coro = app.dotfiles.get(g, ".rc", user=u)
            asyncio.run_coroutine_threadsafe(coro, event_loop).result()
            samples["raw"].append(time.perf_counter() - began)

        def awaited_call() -> None:
            samples["awaited"].append(s.loop.run(in_loop()))

        rotation = (sync_call, raw_call, awaited_call)

        def sample(n: int) -> None:
            # The order rotates: a call may find caches warmed by the one before it.
            for k in range(3):
                rotation[(n + k) % 3]()
            began = time.perf_counter()
            asyncio.run_coroutine_threadsafe(noop(), event_loop).result()
            samples["bare"].append(time.perf_counter() - began)

        def calls(times: int) -> None:
            # In a thread of its own, as a synchronous host would call.
            def loop() -> None:
                for n in range(times):
                    sample(n)

            worker = threading.Thread(target=loop)
            worker.start()
            worker.join()

        calls(100)  # warm-up
        rounds: list[dict[str, float]] = []
        for _ in range(ctx.rounds(5, 2)):
            for kept in samples.values():
                kept.clear()
            calls(count)
            rounds.append({k: median(v) * 1e6 for k, v in samples.items()})
    ratios = [(r["sync"] - r["awaited"]) / r["bare"] for r in rounds]
    # The round with the median ratio: each round's figures come from one stretch of time.
    us = rounds[sorted(range(len(rounds)), key=lambda i: ratios[i])[len(rounds) // 2]]
    added, base = us["sync"] - us["awaited"], us["bare"]
    ctx.note(f"ratio per round {spread(ratios)}")
    ctx.note(
        f"medians of {count} interleaved samples: facade call {us['sync']:.0f} µs, the same "
        f"operation awaited in the loop {us['awaited']:.0f} µs, carried by a bare "
        f"run_coroutine_threadsafe {us['raw']:.0f} µs (so the facade's own share is "
        f"{us['sync'] - us['raw']:.1f} µs), no-op round trip {us['bare']:.0f} µs"
    )
    return added, base


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
