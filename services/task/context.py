"""TaskContext: what a task function is handed first.

A task is ``def fn(ctx: TaskContext, **kwargs)``. Through ``ctx`` it reports
progress, notices cancellation, and gets database sessions of its own: never one
borrowed from the caller that submitted it (the caller's session may be closed,
expired or used by another thread by the time the task runs).

>>> def copy_rows(ctx: TaskContext, source: str, target: str) -> int:
...     ctx.progress(0.0, "starting")
...     async def work() -> int:
...         async with ctx.db() as session, session.begin():
...             ...  # one transaction of the task's own
...         return 0
...     return ctx.run(work())
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from jaseci_like_services.task.errors import TaskDbUnavailable, TaskRevoked

from jaseci_like.config.secrets import mask_url
from jaseci_like.loop import RuntimeLoop

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from jaseci_like import MemoryHook, MetaService

T = TypeVar("T")
#: A task function: ``fn(ctx, **kwargs)``; its result must be JSON for Celery.
TaskFunc = Callable[..., Any]
#: Records progress; returns True (recording nothing) when the task was cancelled.
Report = Callable[[float, str | None], bool]


class TaskResources:
    """What every task of one service shares: the way to the db service and a loop."""

    def __init__(self, hook: MemoryHook | None) -> None:
        self._hook = hook
        self._lock = threading.Lock()
        self._own_loop: RuntimeLoop | None = None

    def _meta(self) -> MetaService | None:
        return self._hook.meta if self._hook is not None else None

    def engine(self) -> AsyncEngine:
        """The db service's ``AsyncEngine``; TaskDbUnavailable when there is none running."""
        from jaseci_like_services.db import DbService

        meta = self._meta()
        if meta is None or not meta.has_service_builder("db"):
            raise TaskDbUnavailable(
                "this task needs a database session, but no db service is registered "
                "with the task service's registry; install or enable the db plugin"
            )
        service = meta.get_service("db", self._hook)
        if not isinstance(service, DbService) or not service.is_running():
            why = mask_url(str(service.error)) if service.error else service.state.name
            raise TaskDbUnavailable(
                f"this task needs a database session, but the db service is not running ({why})"
            )
        engine: AsyncEngine = service.app
        return engine

    def session(self) -> AsyncSession:
        from sqlalchemy.ext.asyncio import AsyncSession

        return AsyncSession(self.engine(), expire_on_commit=False)

    def loop(self) -> RuntimeLoop:
        """The registry's shared loop (the db engine lives there), or one of our own."""
        meta = self._meta()
        if meta is not None:
            return meta.loop
        with self._lock:
            if self._own_loop is None:
                self._own_loop = RuntimeLoop("jaseci-like-task-loop")
            return self._own_loop

    def close(self, timeout: float) -> None:
        with self._lock:
            own, self._own_loop = self._own_loop, None
        if own is not None:
            own.stop(timeout)


class TaskContext:
    """The handle a running task gets: its id and name, progress, cancellation, db.

    Cancellation is cooperative: :meth:`progress` raises :class:`TaskRevoked` once the
    task was cancelled, and :attr:`cancelled` says so for a task that wants to stop
    at its own pace (it should then raise ``TaskRevoked`` itself).
    """

    __slots__ = ("_is_cancelled", "_report", "_resources", "id", "name")

    def __init__(
        self,
        task_id: str,
        name: str,
        *,
        report: Report,
        is_cancelled: Callable[[], bool],
        resources: TaskResources,
    ) -> None:
        self.id = task_id
        self.name = name
        self._report = report
        self._is_cancelled = is_cancelled
        self._resources = resources

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report PROGRESS (``fraction`` of 0..1 done); raise TaskRevoked if cancelled."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be within 0..1, not {fraction!r}")
        if self._report(float(fraction), message):
            raise TaskRevoked(self.id)

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this task."""
        return self._is_cancelled()

    def db(self) -> AsyncSession:
        """A fresh ``AsyncSession`` on the db service's engine, for this task alone.

        Use it inside a coroutine run with :meth:`run`; close it (``async with``).
        """
        return self._resources.session()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the runtime's event loop (where the db engine lives); its result."""
        return self._resources.loop().run(coro, timeout)

    def __repr__(self) -> str:
        return f"<TaskContext {self.name} {self.id}>"
