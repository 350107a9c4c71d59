"""A FastAPI host: the runtime runs on uvicorn's loop, handlers await its services.

uvicorn docs.embedding.fastapi_app:app
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import FastAPI
from jaseci_like_services.db.service import DbService
from jaseci_like_services.task import TaskContext
from jaseci_like_services.task.service import TaskService
from sqlalchemy import text

from jaseci_like.integrations.fastapi import Service, lifespan
from jaseci_like.runtime import Runtime


def make_runtime() -> Runtime:
    # Config from the file APP_CONFIG names (if any) and JASECI_LIKE__* variables.
    return Runtime(config_file=os.environ.get("APP_CONFIG") or None)


app = FastAPI(lifespan=lifespan(make_runtime))


@app.get("/now")
async def now(db: Annotated[DbService, Service(DbService)]) -> dict[str, str]:
    # db.reader (db.app for reads) is an AsyncEngine on this very loop: awaited directly.
    async with db.reader.connect() as conn:
        value = (await conn.execute(text("SELECT CURRENT_TIMESTAMP"))).scalar_one()
    return {"now": str(value)}


def add(ctx: TaskContext, a: int, b: int) -> int:
    return a + b


@app.post("/jobs")
async def job(tasks: Annotated[TaskService, Service(TaskService)]) -> dict[str, str]:
    tasks.register("example.add", add)  # the same function again: a no-op
    return {"task_id": tasks.submit("example.add", a=1, b=2)}
