"""Embedding (issue 15): the async lookup, and a host's handler through the runtime."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import httpx
from fastapi import FastAPI
from jaseci_like_services.db.service import DbService
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from benchmarks.registry import Context, Target, bench
from benchmarks.timing import median, paired, spread
from jaseci_like import CommonService, MetaService
from jaseci_like.integrations.fastapi import STATE_KEY, Service
from jaseci_like.meta import Registry
from jaseci_like.runtime import Runtime


@bench("embed.aget_service_warm", unit="ns", better="lower", target=Target("ratio", "<=", 5))
def aget_service_warm(ctx: Context) -> tuple[float, float]:
    """``await meta.aget_service(name)`` of a running service vs awaiting an async
    function that returns ``table[name]`` (best of the rounds, in one loop)."""

    class Trivial(CommonService):
        name = "trivial"
        default_config = MappingProxyType({"enabled": True})

        def run(self, hook: Any = None) -> None:
            self.app = object()

    meta = MetaService(Registry())
    meta.add_service_builder("trivial", Trivial)
    service = meta.get_service("trivial")
    if not service.is_running():
        ctx.problem(f"the measured service is {service.state.name}, not RUNNING")
    table = {"trivial": service}
    number = 50_000 if ctx.quick else 300_000

    async def lookup(name: str) -> CommonService:
        return table[name]

    async def ours() -> float:
        name, get = "trivial", meta.aget_service
        began = time.perf_counter_ns()
        for _ in range(number):
            await get(name)
        return (time.perf_counter_ns() - began) / number

    async def base() -> float:
        name = "trivial"
        began = time.perf_counter_ns()
        for _ in range(number):
            await lookup(name)
        return (time.perf_counter_ns() - began) / number

    a, b = paired(lambda: asyncio.run(ours()), lambda: asyncio.run(base()), ctx.rounds(9))
    ctx.note(f"ours {spread(a)} ns, baseline {spread(b)} ns")
    return min(a), min(b)


ROWS = 50


@bench("embed.request_ratio", unit="req/s", better="higher", target=Target("ratio", ">=", 0.9))
def request_ratio(ctx: Context) -> tuple[float, float]:
    """A FastAPI handler listing 50 rows through the embedded db service (the runtime
    on the app's loop, the service a typed dependency, reads through ``db.reader``) vs
    the same handler with a hand-made engine on the same SQLite file; requests per second through an
    in-process ASGI client (no sockets: the difference is ours alone), median."""
    return asyncio.run(_request_ratio(ctx))


async def _request_ratio(ctx: Context) -> tuple[float, float]:
    query = text("SELECT id, name FROM bench_rows ORDER BY id")

    async def rows(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    ours_app, base_app = FastAPI(), FastAPI()

    @ours_app.get("/rows")
    async def ours_rows(db: Annotated[DbService, Service(DbService)]) -> list[dict[str, Any]]:
        return await rows(db.reader)

    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "JASECI_LIKE__DB__DATA_DIR": folder,
            "JASECI_LIKE__API__ENABLED": "false",
            "JASECI_LIKE__GROUP_CONFIG__ENABLED": "false",
            "JASECI_LIKE__TASK__ENABLED": "false",
        }
        async with Runtime(environ=env, meta=MetaService(Registry())) as runtime:
            setattr(ours_app.state, STATE_KEY, runtime)
            db = await runtime.meta.aget_service(DbService)
            async with db.app.begin() as conn:
                await conn.execute(
                    text("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, name TEXT)")
                )
                for i in range(ROWS):
                    await conn.execute(
                        text("INSERT INTO bench_rows VALUES (:i, :n)"), {"i": i, "n": f"row {i}"}
                    )
            database = db.app.url.database
            assert database is not None
            own = create_async_engine(f"sqlite+aiosqlite:///{Path(database)}")

            @base_app.get("/rows")
            async def base_rows() -> list[dict[str, Any]]:
                return await rows(own)

            requests = 100 if ctx.quick else 400

            def rate(app: FastAPI) -> Callable[[], Awaitable[float]]:
                async def measure() -> float:
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
                        began = time.perf_counter()
                        for _ in range(requests):
                            got = await c.get("/rows")
                            if got.status_code != 200 or len(got.json()) != ROWS:
                                ctx.problem(f"{got.status_code}: {got.text[:200]}")
                        return requests / (time.perf_counter() - began)

                return measure

            a: list[float] = []
            b: list[float] = []
            await rate(ours_app)()
            await rate(base_app)()  # warm both
            for n in range(ctx.rounds(7)):
                pair = (rate(ours_app), rate(base_app))
                if n % 2:
                    b.append(await pair[1]())
                    a.append(await pair[0]())
                else:
                    a.append(await pair[0]())
                    b.append(await pair[1]())
            await own.dispose()
    ctx.note(f"{requests} requests per round; ours {spread(a)}, baseline {spread(b)} req/s")
    return median(a), median(b)
