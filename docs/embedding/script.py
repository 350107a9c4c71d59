"""A plain script, both ways: sync (the runtime's own loop thread) and async (this loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from jaseci_like_services.db.service import DbService
from sqlalchemy import text

from jaseci_like import MetaService
from jaseci_like.meta import Registry
from jaseci_like.runtime import Runtime


def sync_main(environ: Mapping[str, str] | None = None) -> int:
    runtime = Runtime(environ=environ, meta=MetaService(Registry()))
    runtime.start()
    try:
        db = runtime.meta.get_service(DbService)
        # Typed config: a DbConfig while the service runs (mypy knows pool_size is an int).
        assert db.settings is not None and db.settings.pool_size >= 1

        async def one() -> int:
            async with db.app.connect() as conn:
                return int((await conn.execute(text("SELECT 1"))).scalar_one())

        return db.loop.run(one())  # from sync code: run it on the runtime's loop
    finally:
        runtime.stop()


async def async_main(environ: Mapping[str, str] | None = None) -> int:
    async with Runtime(environ=environ, meta=MetaService(Registry())) as runtime:
        db = await runtime.meta.aget_service(DbService)
        async with db.app.connect() as conn:  # this loop runs the engine: await it
            return int((await conn.execute(text("SELECT 1"))).scalar_one())


if __name__ == "__main__":
    print(sync_main(), asyncio.run(async_main()))
