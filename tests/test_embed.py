"""Embedding (issue 15.1-3): the async face, host integrations, typed lookups.

The runtimes here run db (SQLite in a temporary folder), task (embedded),
group_config and api (port 0); the async ones on the test's own loop.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from jaseci_like_services.db.service import DbService
from jaseci_like_services.redis.service import RedisService
from sqlalchemy import text
from starlette.testclient import TestClient  # httpx: already a test dependency

from docs.embedding import script, wsgi_app
from jaseci_like import CommonService, MetaService
from jaseci_like.errors import ServiceNotFound, WrongLoopError
from jaseci_like.integrations.wsgi import Embedded
from jaseci_like.meta import Registry
from jaseci_like.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "JASECI_LIKE__DB__DATA_DIR": str(tmp_path),
        "JASECI_LIKE__API__PORT": "0",
    }


@pytest.fixture
def runtime(environ: dict[str, str]) -> Iterator[Runtime]:
    found = Runtime(environ=environ, meta=MetaService(Registry()))
    found.start()
    yield found
    found.stop()


async def select_one(db: DbService) -> int:
    async with db.app.connect() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# -- typed lookups -------------------------------------------------------------------
def test_lookup_by_class_is_the_instance_by_name(runtime: Runtime) -> None:
    db = runtime.meta.get_service(DbService)
    assert isinstance(db, DbService)
    assert db is runtime.meta.get_service("db") is runtime.meta.get_service("db", runtime.hook)
    assert asyncio.run(runtime.meta.aget_service("db")) is db
    assert asyncio.run(runtime.meta.aget_service(DbService)) is db


def test_lookup_by_the_wrong_class_is_refused(runtime: Runtime) -> None:
    class OtherDb(CommonService):
        name = "db"

    with pytest.raises(ServiceNotFound, match="'db' is a DbService, not a OtherDb"):
        runtime.meta.get_service(OtherDb)


def test_mypy_strict_passes_on_the_examples() -> None:
    done = subprocess.run(
        # Errors of the examples only: the library is checked by its own mypy run.
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "docs/embedding"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_typed_apps_are_declared() -> None:
    assert DbService.__annotations__["app"] == "AsyncEngine"
    assert RedisService.__annotations__["app"] == "redis.Redis"


# -- the async face -------------------------------------------------------------------
def test_async_runtime_runs_services_on_the_hosts_loop(environ: dict[str, str]) -> None:
    async def main() -> None:
        async with Runtime(environ=environ, meta=MetaService(Registry())) as runtime:
            assert runtime.meta.loop.event_loop is asyncio.get_running_loop()
            db = await runtime.meta.aget_service(DbService)
            assert await select_one(db) == 1  # awaited here, on the host's loop
            api = runtime.meta.get_service("api")
            assert api.is_running()  # uvicorn of the api service shares this loop
            # Our loop thread is not there: the host's loop is the only one.
            assert not any(t.name == "jaseci-like-loop" for t in threading.enumerate())
            with pytest.raises(WrongLoopError, match="await the coroutine instead"):
                db.loop.run(select_one(db))  # would block the loop it waits for

    asyncio.run(main())


def test_the_engine_from_a_foreign_loop_says_what_to_call(runtime: Runtime) -> None:
    db = runtime.meta.get_service(DbService)
    with pytest.raises(WrongLoopError, match=r"use service\.loop\.run\(coro\)") as caught:
        asyncio.run(select_one(db))  # a loop of its own, not the runtime's
    assert caught.value.code == "wrong_event_loop"
    assert db.loop.run(select_one(db)) == 1  # the right way still works after it


def test_an_adopted_engine_from_another_threads_loop_says_so(environ: dict[str, str]) -> None:
    errors: list[BaseException] = []

    async def main() -> None:
        async with Runtime(environ=environ, meta=MetaService(Registry())) as runtime:
            db = await runtime.meta.aget_service(DbService)

            def elsewhere() -> None:
                try:
                    asyncio.run(select_one(db))
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=elsewhere)
            thread.start()
            await asyncio.to_thread(thread.join)
            assert await select_one(db) == 1

    asyncio.run(main())
    assert len(errors) == 1
    assert isinstance(errors[0], WrongLoopError)
    assert "the host's loop (the one that ran astart)" in str(errors[0])


def test_astart_while_the_own_loop_runs_is_refused(runtime: Runtime) -> None:
    async def main() -> None:
        with pytest.raises(WrongLoopError, match="stop it before awaiting astart"):
            await runtime.astart()

    runtime.meta.loop.run(asyncio.sleep(0))  # our own loop thread runs
    asyncio.run(main())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_twenty_start_stop_cycles_leave_nothing(environ: dict[str, str], mode: str) -> None:
    def cycle() -> None:
        if mode == "sync":
            assert script.sync_main(environ) == 1
        else:
            assert asyncio.run(script.async_main(environ)) == 1

    cycle()  # first: imports, lazily made module-level things
    threads, fds = set(threading.enumerate()), open_fds()
    for _ in range(20):
        cycle()
    left_threads = [t.name for t in set(threading.enumerate()) - threads]
    assert left_threads == []
    # The SQLite file, its WAL and every socket (api, loop self-pipes) closed again.
    assert [os.path.realpath(f"/proc/self/fd/{fd}") for fd in open_fds() - fds] == []


# -- host integrations ------------------------------------------------------------------
def test_fastapi_example(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    from docs.embedding import fastapi_app

    # TestClient runs the app's lifespan and requests on one loop, as uvicorn does.
    with TestClient(fastapi_app.app) as client:
        now = client.get("/now")
        assert now.status_code == 200, now.text
        assert now.json()["now"]
        job = client.post("/jobs")
        assert job.status_code == 200, job.text
        runtime: Any = fastapi_app.app.state.jaseci_like
        tasks = runtime.meta.get_service("task")
        assert tasks.wait(job.json()["task_id"], timeout=30).result == 3
    assert not hasattr(fastapi_app.app.state, "jaseci_like")  # stopped with the app


def test_wsgi_example(environ: dict[str, str]) -> None:
    runtime = Runtime(environ=environ, meta=MetaService(Registry()))
    embedded = Embedded(runtime).start()
    try:
        app = wsgi_app.make_app(embedded)
        request: dict[str, Any] = {}
        setup_testing_defaults(request)
        statuses: list[str] = []
        body = b"".join(app(request, lambda status, headers: statuses.append(status)))
        assert statuses == ["200 OK"]
        assert body == b'{"one": 1}'
    finally:
        embedded.stop()
    assert not runtime.meta.loop.running
