"""Helpers for the task service tests: a service factory, gates, and the scenarios
both modes must pass (``tests/test_task_embedded.py``, ``tests/test_task_celery.py``).

Not a pytest plugin (the test modules import it, so pytest cannot rewrite it):
asserts that could be puzzling carry their own message.

Tasks run in threads of this process (embedded pool or in-process Celery worker),
so they can wait on ``threading.Event``s the test controls: every state is
observed deterministically and nothing sleeps. ``WAIT`` bounds each wait; it is a
safety net, never a measurement.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from jaseci_like_services.db import DbService
from jaseci_like_services.task import (
    TaskArgumentsError,
    TaskContext,
    TaskFunc,
    TaskNotFound,
    TaskService,
    TaskState,
    TaskStatus,
    UnknownTask,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from jaseci_like import MemoryHook, MetaService, ServiceState
from jaseci_like.config.layers import ConfigLayers

#: Seconds any single wait may take before the test fails.
WAIT = 30.0
#: The spec's bound on stopping the task service (worker + beat).
STOP_BOUND = 2.0
#: A secret the failing task puts in its message; it must never come back out.
SECRET = "s3cret-Pa55"
SECRET_URL = f"redis://app:{SECRET}@db.internal:6379/0"

S = TaskState


class Factory(Protocol):
    """Builds and starts a task service (and a db service, with ``db=True``)."""

    def __call__(
        self,
        tasks: Mapping[str, TaskFunc] | None = None,
        *,
        db: bool = False,
        **settings: str,
    ) -> TaskService: ...


def environ(section: str, settings: Mapping[str, str]) -> dict[str, str]:
    return {f"JASECI_LIKE__{section.upper()}__{k.upper()}": v for k, v in settings.items()}


def make_factory(meta: MetaService, data_dir: Path, base: Mapping[str, str]) -> Factory:
    """A factory on ``meta`` whose services start with ``base`` settings (then the call's)."""

    def build(
        tasks: Mapping[str, TaskFunc] | None = None, *, db: bool = False, **settings: str
    ) -> TaskService:
        env = environ("task", {**base, **settings})
        if db:
            env.update(environ("db", {"data_dir": str(data_dir)}))
            if not meta.has_service_builder("db"):
                meta.add_service_builder("db", DbService)
        hook = MemoryHook(ConfigLayers(environ=env))
        hook.meta = meta
        meta.registry.tasks.update(tasks or {})
        if not meta.has_service_builder("task"):
            meta.add_service_builder("task", TaskService)
        service = meta.get_service("task", hook)
        assert isinstance(service, TaskService)
        assert service.is_running(), f"task service {service.state.name}: {service.error}"
        return service

    return build


@dataclass
class Gates:
    """Named events shared by a test and its tasks."""

    events: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __getitem__(self, name: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(name, threading.Event())

    def wait(self, name: str) -> None:
        """Wait (bounded by WAIT) for ``name``; a test fails loudly if it never comes."""
        assert self[name].wait(WAIT), f"gate {name!r} was never opened"

    def release_all(self) -> None:
        """Open every gate, so no task is left waiting after its test."""
        with self.lock:
            for event in self.events.values():
                event.set()


# -- the scenarios --------------------------------------------------------------------


def states_in_order(make: Factory, gates: Gates) -> None:
    """PENDING -> STARTED -> PROGRESS -> SUCCESS, each state seen while it holds."""

    def block(ctx: TaskContext) -> str:
        gates["block running"].set()
        gates.wait("release block")
        return "unblocked"

    def steps(ctx: TaskContext, answer: int) -> int:
        gates["steps started"].set()
        gates.wait("go progress")
        ctx.progress(0.5, "half way")
        gates["progress reported"].set()
        gates.wait("go finish")
        return answer

    service = make({"block": block, "steps": steps}, workers="1")
    blocker = service.submit("block")
    gates.wait("block running")  # the only worker thread is busy now
    task_id = service.submit("steps", answer=42)
    seen = [service.status(task_id)]
    gates["release block"].set()
    gates.wait("steps started")
    seen.append(service.status(task_id))
    gates["go progress"].set()
    gates.wait("progress reported")
    seen.append(service.status(task_id))
    gates["go finish"].set()
    seen.append(service.wait(task_id, WAIT))

    assert [s.state for s in seen] == [S.PENDING, S.STARTED, S.PROGRESS, S.SUCCESS]
    assert all(s.id == task_id and s.name == "steps" for s in seen)
    progress = seen[2]
    assert (progress.progress, progress.message) == (0.5, "half way")
    done = seen[3]
    assert (done.result, done.progress, done.error, done.done) == (42, 1.0, None, True)
    assert service.wait(blocker, WAIT).result == "unblocked"


def failure_is_reported_without_secret(make: Factory) -> TaskStatus:
    """A failing task: FAILURE, a one-line error naming the exception, no secret."""

    def fail(ctx: TaskContext) -> None:
        raise ConnectionError(f"cannot reach {SECRET_URL}\nwhile copying")

    service = make({"fail": fail})
    done = service.wait(service.submit("fail"), WAIT)
    assert done.state is S.FAILURE
    assert done.error is not None
    assert done.error.startswith("ConnectionError: cannot reach redis://app:***@db.internal")
    assert done.error_code == "task_failed"  # an error without a code of its own
    assert "while copying" in done.error and "\n" not in done.error
    assert SECRET not in done.error
    assert done.result is None
    return done


def cancel_running(make: Factory, gates: Gates) -> None:
    """Cancel a running task: it sees ``ctx.cancelled``, its next progress stops it."""
    after: list[str] = []

    def long_job(ctx: TaskContext) -> str:
        ctx.progress(0.1, "started")
        gates["running"].set()
        gates.wait("cancel requested")
        after.append(f"cancelled={ctx.cancelled}")
        ctx.progress(0.2, "still going")  # raises TaskRevoked
        after.append("ran past a cancel")
        return "finished"

    service = make({"long_job": long_job})
    task_id = service.submit("long_job")
    gates.wait("running")
    answer = service.cancel(task_id)
    assert answer.state is S.PROGRESS  # still running: it stops at its next check
    gates["cancel requested"].set()
    done = service.wait(task_id, WAIT)
    assert done.state is S.REVOKED
    assert after == ["cancelled=True"]
    assert service.status(task_id).state is S.REVOKED


def cancel_queued(make: Factory, gates: Gates) -> None:
    """Cancel a task that waits for a thread: REVOKED at once, and it never runs."""
    ran: list[str] = []

    def block(ctx: TaskContext) -> None:
        gates["block running"].set()
        gates.wait("release block")

    def victim(ctx: TaskContext) -> None:
        ran.append("victim")

    def marker(ctx: TaskContext) -> str:
        return "after the victim"

    service = make({"block": block, "victim": victim, "marker": marker}, workers="1")
    blocker = service.submit("block")
    gates.wait("block running")
    task_id = service.submit("victim")
    answer = service.cancel(task_id)
    assert (answer.state, answer.name) == (S.REVOKED, "victim")
    gates["release block"].set()
    assert service.wait(blocker, WAIT).state is S.SUCCESS
    # One thread, first in first out: once the marker ran, the victim's turn is past.
    assert service.wait(service.submit("marker"), WAIT).result == "after the victim"
    assert service.wait(task_id, WAIT).state is S.REVOKED
    assert ran == []


def cancel_finished_changes_nothing(make: Factory) -> None:
    service = make({"quick": lambda ctx: "done"})
    task_id = service.submit("quick")
    assert service.wait(task_id, WAIT).state is S.SUCCESS
    assert service.cancel(task_id).state is S.SUCCESS
    assert service.status(task_id).result == "done"


def unknown_names_and_ids(make: Factory) -> None:
    service = make({"known": lambda ctx: None})
    with pytest.raises(UnknownTask, match=r"no task named 'nope' \(known: ") as unknown:
        service.submit("nope")
    assert unknown.value.code == "task_unknown"
    for call in (service.status, service.cancel, service.wait):
        with pytest.raises(TaskNotFound, match="no task with id 'not-an-id'") as missing:
            call("not-an-id")
        assert missing.value.code == "task_not_found"


def arguments_must_be_json(make: Factory) -> None:
    """A live object (a session, a lock) cannot be handed to a task."""
    service = make({"takes": lambda ctx, value: value})
    with pytest.raises(TaskArgumentsError, match="JSON") as refused:
        service.submit("takes", value=threading.Lock())
    assert refused.value.code == "task_arguments_invalid"
    done = service.wait(service.submit("takes", value={"ids": [1, 2], "name": "x"}), WAIT)
    assert done.result == {"ids": [1, 2], "name": "x"}


PROBE_TABLE = "task_probe_rows"


async def _create_probe_table(session: AsyncSession) -> None:
    async with session.begin():
        await session.execute(
            text(f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (value TEXT NOT NULL)")
        )


def own_db_session(make: Factory) -> None:
    """The task writes through a session of its own: not the caller's, a new one each
    ``ctx.db()``, committed in its own transaction; a session cannot be passed in."""
    sessions: list[AsyncSession] = []

    def write_row(ctx: TaskContext, value: str) -> str:
        async def write() -> None:
            async with ctx.db() as session, session.begin():
                sessions.append(session)
                await session.execute(
                    text(f"INSERT INTO {PROBE_TABLE} (value) VALUES (:v)"), {"v": value}
                )

        ctx.run(write())
        sessions.append(ctx.db())  # a second call: another session again
        return value

    service = make({"write_row": write_row}, db=True)
    meta = service.hook.meta if service.hook is not None else None
    assert meta is not None
    db = meta.get_service("db", service.hook)
    assert isinstance(db, DbService) and db.is_running()
    caller = AsyncSession(db.app, expire_on_commit=False)

    async def setup_and_read() -> list[str]:
        await _create_probe_table(caller)
        async with caller.begin():
            rows = await caller.execute(text(f"SELECT value FROM {PROBE_TABLE}"))
            return [r[0] for r in rows]

    assert db.loop.run(setup_and_read()) == []
    with pytest.raises(TaskArgumentsError):
        service.submit("write_row", value="x", session=caller)
    done = service.wait(service.submit("write_row", value="from the task"), WAIT)
    assert done.state is S.SUCCESS, done.error
    assert len(sessions) == 2
    assert all(isinstance(s, AsyncSession) for s in sessions)
    assert sessions[0] is not caller and sessions[1] is not caller
    assert sessions[0] is not sessions[1]
    # Committed by the task's own transaction: the caller sees it in a new one.
    assert db.loop.run(setup_and_read()) == ["from the task"]
    db.loop.run(caller.close())


def db_absent_is_a_clear_failure(make: Factory) -> None:
    def needs_db(ctx: TaskContext) -> None:
        ctx.db()

    service = make({"needs_db": needs_db})
    done = service.wait(service.submit("needs_db"), WAIT)
    assert done.state is S.FAILURE
    assert done.error is not None
    assert done.error.startswith("TaskDbUnavailable: this task needs a database session")
    assert "no db service is registered" in done.error


def periodic_fires(make: Factory, gates: Gates) -> None:
    """An entry every 0.2 s runs through ``submit``: its runs have ids and statuses."""
    runs: list[str] = []
    lock = threading.Lock()

    def tick(ctx: TaskContext, label: str) -> str:
        with lock:
            runs.append(ctx.id)
            if len(runs) == 3:
                gates["three ticks"].set()
        return label

    periodic = '{"tick": {"task": "tick", "every": 0.2, "kwargs": {"label": "beat"}}}'
    service = make({"tick": tick}, periodic=periodic)
    assert "beat" in service.daemon_names()
    gates.wait("three ticks")
    with lock:
        first = runs[0]
    assert len(set(runs)) == len(runs) >= 3
    done = service.wait(first, WAIT)
    assert (done.name, done.state, done.result) == ("tick", S.SUCCESS, "beat")


def stop_is_bounded_and_leaves_no_thread(make: Factory, daemons: set[str], **settings: str) -> None:
    """Stopping the service with its daemons takes < 2 s and leaves no thread behind."""
    before = set(threading.enumerate())
    periodic = '{"hourly": {"task": "noop", "every": 3600}}'
    service = make({"noop": lambda ctx: "ok"}, db=False, periodic=periodic, **settings)
    assert set(service.daemon_names()) == daemons
    assert service.wait(service.submit("noop"), WAIT).result == "ok"  # threads in use
    assert service.health()
    began = time.monotonic()
    service.stop()
    took = time.monotonic() - began
    assert service.state is ServiceState.STOPPED
    assert took < STOP_BOUND, f"stop took {took:.2f}s"
    assert service.daemon_names() == []
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == []
    assert not service.health()
