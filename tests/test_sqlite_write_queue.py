"""SQLite writers of one process queue for the file (``jaseci_like.repository.write_queue``):
200 concurrent writers over HTTP all succeed without a retry, turns go in arrival
order, and a writer that keeps its turn fails the waiters only after the lock timeout."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from jaseci_like.repository import (
    DbOps,
    WriteQueueStalled,
    is_transient,
    serialize_writes,
    write_turn,
)
from tests.api_support import WAIT, ApiRig, api_rig

WRITERS = 200
GROUPS = 4


@pytest.fixture
def writers_rig(tmp_path: Path) -> Iterator[ApiRig]:
    # A lock timeout of 1 s: far longer than one write holds the file, far shorter
    # than 200 writes in a row take, so writers that poll SQLite's lock instead of
    # queueing for it run out of time while others keep winning.
    with api_rig(tmp_path, settings={"db.busy_timeout_ms": "1000"}) as rig:
        rig.seed()
        yield rig


def test_200_concurrent_http_creates_all_succeed_without_a_retry(writers_rig: ApiRig) -> None:
    rig = writers_rig
    with rig.as_role("superadmin") as client:
        groups = [
            client.put("/v1/groups", json={"name": f"writers-{n}"}).json()["id"]
            for n in range(GROUPS)
        ]

    async def create_all() -> list[int]:
        limits = httpx.Limits(max_connections=WRITERS, max_keepalive_connections=WRITERS)
        headers = {"Authorization": f"Bearer {rig.keys['superadmin']}"}
        async with httpx.AsyncClient(
            base_url=rig.url, headers=headers, limits=limits, timeout=4 * WAIT
        ) as client:

            async def create(n: int) -> int:
                path = f"/v1/groups/{groups[n % GROUPS]}/dotfiles/.w{n:03}"
                answer = await client.put(path, json={"data": f"writer {n}"})
                return answer.status_code

            return await asyncio.gather(*(create(n) for n in range(WRITERS)))

    statuses = Counter(asyncio.run(create_all()))
    assert statuses == {201: WRITERS}
    rows = [row for g in groups for row in rig.rows(uuid.UUID(g))]
    assert len(rows) == WRITERS
    assert len({(row[1], row[2]) for row in rows}) == WRITERS  # one row per group and path
    metrics = rig.app.metrics
    assert metrics.value("operations_total", operation="dotfile.create", outcome="ok") == WRITERS
    # Queued writers never met a locked file: not one attempt was repeated.
    assert metrics.value("retries_total", operation="dotfile.create") == 0


# -- the queue itself --------------------------------------------------------------------------


def on_engine(tmp_path: Path, scenario: Callable[[AsyncEngine], Awaitable[None]]) -> None:
    """Run ``scenario`` on a fresh loop with an aiosqlite engine on a file of its own."""

    async def run() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}")
        try:
            await asyncio.wait_for(scenario(engine), WAIT)
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_turns_are_taken_in_arrival_order(tmp_path: Path) -> None:
    order: list[int] = []

    async def scenario(engine: AsyncEngine) -> None:
        serialize_writes(engine, stall=WAIT)

        async def writer(n: int) -> None:
            async with write_turn(engine):
                order.append(n)
                await asyncio.sleep(0)  # the others arrive and queue meanwhile
                order.append(n)

        await asyncio.gather(*(writer(n) for n in range(20)))

    on_engine(tmp_path, scenario)
    assert order == [n for n in range(20) for _ in range(2)]


def test_a_kept_turn_fails_its_waiters_after_the_stall_and_the_queue_goes_on(
    tmp_path: Path,
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        serialize_writes(engine, stall=0.2)
        holding = asyncio.Event()
        release = asyncio.Event()

        async def keeper() -> None:
            async with write_turn(engine):
                holding.set()
                await release.wait()

        kept = asyncio.create_task(keeper())
        await holding.wait()
        with pytest.raises(WriteQueueStalled) as raised:
            async with write_turn(engine):
                pytest.fail("got a turn while another writer kept it")
        assert is_transient(raised.value)  # retried, then 503 with Retry-After, like "locked"
        release.set()
        await kept
        async with write_turn(engine):
            pass

    on_engine(tmp_path, scenario)


def test_a_cancelled_waiter_leaves_the_queue_working(tmp_path: Path) -> None:
    served: list[str] = []
    cancelled: list[bool] = []

    async def scenario(engine: AsyncEngine) -> None:
        serialize_writes(engine, stall=WAIT)
        holding = asyncio.Event()
        release = asyncio.Event()

        async def writer(name: str) -> None:
            async with write_turn(engine):
                served.append(name)
                if name == "first":
                    holding.set()
                    await release.wait()

        first = asyncio.create_task(writer("first"))
        await holding.wait()
        quitter = asyncio.create_task(writer("quitter"))
        last = asyncio.create_task(writer("last"))
        await asyncio.sleep(0)  # both queue behind "first"
        quitter.cancel()
        release.set()
        await asyncio.gather(first, last)
        cancelled.append(quitter.cancelled())

    on_engine(tmp_path, scenario)
    assert cancelled == [True]
    assert served == ["first", "last"]


def test_a_unit_of_work_inside_another_does_not_wait_for_itself(tmp_path: Path) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        serialize_writes(engine, stall=WAIT)
        async with write_turn(engine), write_turn(engine):
            pass
        # The queue is free afterwards: a unit of work writes.
        async with DbOps(engine).write_ops() as w:
            await w.execute(text("CREATE TABLE t (x INTEGER)"))

    on_engine(tmp_path, scenario)
