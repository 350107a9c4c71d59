"""A WSGI host (Flask works the same way: ``attach(flask_app, runtime)``): the runtime on
its own loop thread, request threads run coroutines there through ``embedded.run``.

    gunicorn docs.embedding.wsgi_app:app
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from jaseci_like_services.db.service import DbService
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.integrations.wsgi import Embedded, attach
from jaseci_like.runtime import Runtime


async def one(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


def make_app(embedded: Embedded) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        db = embedded.get(DbService)  # typed: a DbService, db.app an AsyncEngine
        body = json.dumps({"one": embedded.run(one(db.app))}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


def create() -> Callable[..., Iterable[bytes]]:
    runtime = Runtime(config_file=os.environ.get("APP_CONFIG") or None)
    return make_app(attach(None, runtime))


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", 8080, create()).serve_forever()
