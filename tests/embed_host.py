"""The FastAPI host that tests/test_embed_uvicorn.py serves with uvicorn in a subprocess:
each request awaits the db service, the redis client and a task submission, all on
uvicorn's loop (the runtime adopted it in the lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI
from jaseci_like_services.db.service import DbService
from jaseci_like_services.redis.service import RedisService
from jaseci_like_services.task import TaskContext
from jaseci_like_services.task.service import TaskService
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from jaseci_like.integrations.fastapi import Service, lifespan
from jaseci_like.runtime import Runtime

app = FastAPI(lifespan=lifespan(Runtime))


def noop(ctx: TaskContext, n: int) -> int:
    return n


@app.get("/work/{n}")
async def work(
    n: int,
    db: Annotated[DbService, Service(DbService)],
    cache: Annotated[RedisService, Service(RedisService)],
    tasks: Annotated[TaskService, Service("task")],
) -> dict[str, object]:
    # A read: db.reader, as the README says (db.app on SQLite begins IMMEDIATE, taking
    # the file's write lock, which 16 clients then queue for).
    async with db.reader.connect() as conn:
        value = (await conn.execute(text("SELECT CAST(:n AS INTEGER)"), {"n": n})).scalar_one()
    # redis.Redis blocks: a worker thread, so the loop goes on serving meanwhile.
    hits = await run_in_threadpool(cache.app.incr, "embed:hits")
    tasks.register("embed.noop", noop)
    task_id = tasks.submit("embed.noop", n=n)
    return {"n": value, "hits": hits, "task": task_id}
