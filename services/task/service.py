"""TaskService: submit named tasks, follow their status, cancel them; periodic tasks.

Two modes behind one API (``task.mode``):

- ``embedded`` (default): tasks run on a thread pool of this process, state in
  memory; nothing to install, no polling delay.
- ``celery``: Celery with Redis as broker and result backend; the worker runs as a
  daemon of this service (``workers`` threads) and/or in other processes
  (``jaseci-like worker``), and a status survives a restart.

In both, ``app`` is the Celery application, and periodic tasks (``task.periodic``)
are sent by a beat daemon through :meth:`TaskService.submit`.

The API, for other services and the HTTP layer: ``register(name, func)``,
``submit(name, **kwargs) -> task_id`` (at once), ``status(task_id)``,
``cancel(task_id)``, ``wait(task_id, timeout)``, each answering a
:class:`TaskStatus`. An unknown name is :class:`UnknownTask`; an id that was never
issued, or whose record expired after ``result_ttl``, is :class:`TaskNotFound`
(code ``task_not_found``: a 404), never an endless PENDING.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar, Self

from jaseci_like_configs import defaults
from jaseci_like_services.task.config import TaskConfig
from jaseci_like_services.task.context import TaskFunc, TaskResources
from jaseci_like_services.task.errors import (
    TaskArgumentsError,
    TaskRegistrationError,
    TaskServiceNotRunning,
    UnknownTask,
)
from jaseci_like_services.task.runner import Runner
from jaseci_like_services.task.status import TaskStatus

from jaseci_like import CommonService, MemoryHook

_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,199}$")
#: Seconds ``start`` waits for an in-process Celery worker to consume.
WORKER_READY_TIMEOUT = 15.0


class TaskService(CommonService):
    """``app`` is a Celery application; tasks run embedded or on Celery workers.

    >>> service = TaskService().start()
    >>> service.register("add", lambda ctx, a, b: a + b)
    >>> service.wait(service.submit("add", a=1, b=2)).result
    3
    >>> _ = service.stop()
    """

    name = "task"
    config_schema = TaskConfig
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: TaskConfig | None
    default_config: ClassVar[dict[str, Any]] = defaults("task")
    start_blocks = True
    # Its workers take from one queue and its beat fires one schedule: a second
    # instance alongside would run tasks twice, so a refresh resets it in place.
    exclusive = True

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self._tasks: dict[str, TaskFunc] = {}
        self._runner: Runner | None = None
        self._resources: TaskResources | None = None
        #: Seconds teardown may take: the budget of the stop under way.
        self._teardown_budget = 1.5
        super().__init__(hook)

    @property
    def task_settings(self) -> TaskConfig:
        settings = self.settings
        if not isinstance(settings, TaskConfig):
            raise TaskServiceNotRunning(f"the task service has no valid config: {self.error}")
        return settings

    # -- registering -------------------------------------------------------------------
    def register(self, name: str, func: TaskFunc) -> None:
        """Make ``func(ctx, **kwargs)`` runnable as ``name``, before or after start.

        Registering the same function twice is a no-op; another function under a
        taken name is refused.
        """
        if not isinstance(name, str) or not _TASK_NAME.match(name):
            raise TaskRegistrationError(
                f"task name {name!r}: 1-200 characters of letters, digits, '_', '.', ':' "
                "or '-', not starting with a digit"
            )
        if not callable(func):
            raise TaskRegistrationError(f"task {name!r}: {func!r} is not callable")
        if inspect.iscoroutinefunction(func):
            raise TaskRegistrationError(
                f"task {name!r}: an async function; a task is a plain function that "
                "runs coroutines with ctx.run(...)"
            )
        current = self.tasks().get(name)
        if current is not None and current is not func:
            raise TaskRegistrationError(
                f"task {name!r} is already registered ({_describe(current)}); "
                f"refusing {_describe(func)}"
            )
        self._tasks[name] = func
        runner = self._runner
        if runner is not None:
            runner.register(name, func)

    def tasks(self) -> dict[str, TaskFunc]:
        """Every task this service can run: plugins' (``jaseci_like_tasks``) and registered."""
        meta = self.hook.meta if self.hook is not None else None
        found = dict(meta.registry.tasks) if meta is not None else {}
        found.update(self._tasks)
        return found

    def _lookup(self, name: str) -> TaskFunc:
        func = self._tasks.get(name)
        if func is None:
            func = self.tasks().get(name)
        if func is None:
            known = ", ".join(sorted(self.tasks())) or "none"
            raise UnknownTask(f"no task named {name!r} (known: {known})")
        return func

    # -- the API -------------------------------------------------------------------------
    def submit(self, name: str, /, **kwargs: Any) -> str:
        """Queue ``name(ctx, **kwargs)``; returns the task id at once.

        ``kwargs`` must be JSON (Celery sends them to other processes; embedded mode
        refuses the same values, so code that works embedded works at scale).
        """
        func = self._lookup(name)
        _check_json(name, kwargs)
        return self._running().submit(name, func, kwargs)

    def status(self, task_id: str) -> TaskStatus:
        """The task's status now. An id never issued (or expired): TaskNotFound."""
        return self._running().status(task_id)

    def cancel(self, task_id: str) -> TaskStatus:
        """Cancel a task: one that has not started is REVOKED at once; a running one
        becomes REVOKED at its next ``ctx.progress`` (or when it sees ``ctx.cancelled``).
        A finished task is left as it is."""
        return self._running().cancel(task_id)

    def wait(self, task_id: str, timeout: float | None = None) -> TaskStatus:
        """Block until the task is done (or ``timeout`` seconds passed); its status then."""
        return self._running().wait(task_id, timeout)

    def _running(self) -> Runner:
        runner = self._runner
        if runner is None or not self.is_running():
            raise TaskServiceNotRunning(
                f"the task service is {self.state.name}"
                + (f" ({self.error})" if self.error else "")
            )
        return runner

    @property
    def worker_name(self) -> str | None:
        """The node name of the Celery worker this service runs, if any."""
        worker = getattr(self._runner, "worker", None)
        name = getattr(worker, "name", None)
        return name if isinstance(name, str) else None

    # -- lifecycle -----------------------------------------------------------------------
    def run(self, hook: MemoryHook | None = None) -> None:
        settings = self.task_settings
        tasks = self.tasks()
        for entry_name, entry in settings.periodic.items():
            if entry.task not in tasks:
                known = ", ".join(sorted(tasks)) or "none"
                raise UnknownTask(
                    f"task.periodic.{entry_name}.task = {entry.task!r}: no task of that "
                    f"name is registered (known: {known})"
                )
        from jaseci_like_services.task.celery_app import make_app

        app = make_app(settings)
        app.conf.beat_schedule = {
            name: {"task": entry.task, "schedule": entry.schedule(app), "kwargs": entry.kwargs}
            for name, entry in settings.periodic.items()
        }
        resources = TaskResources(hook if hook is not None else self.hook)
        runner = self._make_runner(app, settings, resources)
        for name, func in tasks.items():
            runner.register(name, func)
        self._resources = resources
        self._runner = runner
        self.app = app

    def _make_runner(self, app: Any, settings: TaskConfig, resources: TaskResources) -> Runner:
        if settings.mode == "embedded":
            from jaseci_like_services.task.embedded import EmbeddedRunner

            return EmbeddedRunner(settings.workers, settings.result_ttl, resources, self.label())
        from jaseci_like_services.task.celery_runner import CeleryRunner

        assert settings.backend_url is not None  # the schema requires it in celery mode
        return CeleryRunner(
            app,
            backend_url=settings.backend_url,
            result_ttl=settings.result_ttl,
            resources=resources,
            workers=settings.workers,
        )

    def post_run(self, hook: MemoryHook | None = None) -> None:
        runner = self._runner
        assert runner is not None
        daemons: dict[str, Callable[..., object]] = dict(runner.daemons())
        settings = self.task_settings
        if settings.beat and settings.periodic:
            daemons["beat"] = self._beat_target()
        self.spawn_daemon(**daemons)
        runner.wait_ready(WORKER_READY_TIMEOUT)

    def _beat_target(self) -> Callable[..., object]:
        from jaseci_like_services.task.beat import SubmittingScheduler, run_beat

        from jaseci_like.cluster import leader_of

        def submit(name: str, kwargs: Mapping[str, Any]) -> str:
            return self.submit(name, **kwargs)

        # Once per system: on the leader only, each tick claimed under its lease. A
        # registry that joined no cluster is alone, and beats as it always did.
        meta = self.hook.meta if self.hook is not None else None
        leadership = leader_of(meta) if meta is not None else None
        if leadership is None:
            return partial(run_beat, lambda: SubmittingScheduler(self.app, submit), leading=None)
        lead = leadership

        def make() -> SubmittingScheduler:
            return SubmittingScheduler(
                self.app, submit, claim=lead.claim, catch_up=lead.config.lease
            )

        def beat(stop: threading.Event) -> None:
            changed = threading.Event()
            unsubscribe = lead.on_change(lambda _leading: changed.set())
            try:
                run_beat(make, stop, leading=lambda: lead.is_leader("beat"), changed=changed)
            finally:
                unsubscribe()

        return beat

    def stop(self, timeout: float | None = None) -> Self:
        """Stop beat and the worker (running tasks are asked to stop) within
        ``timeout`` seconds, by default ``task.stop_timeout``."""
        if timeout is None and isinstance(self.settings, TaskConfig):
            timeout = self.settings.stop_timeout
        if timeout is not None:
            self._teardown_budget = timeout
        return super().stop(timeout)

    def teardown(self) -> None:
        runner, resources = self._runner, self._resources
        # Most of the budget for the worker; what is left for the connections.
        budget = self._teardown_budget * 0.8
        try:
            if runner is not None:
                runner.close(budget)
        finally:
            self._runner = None
            if resources is not None:
                resources.close(budget)

    def health(self) -> bool:
        runner = self._runner
        return runner is not None and self.is_running() and runner.health()


def _describe(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "?"
    return f"{module}.{getattr(func, '__qualname__', repr(func))}"


def _check_json(name: str, kwargs: Mapping[str, Any]) -> None:
    from kombu.utils.json import dumps

    try:
        dumps(kwargs)  # type: ignore[no-untyped-call]
    except (TypeError, ValueError) as exc:
        raise TaskArgumentsError(
            f"task {name!r}: its keyword arguments must be JSON values (ids, numbers, "
            f"text, lists, mappings), not live objects such as sessions: {exc}"
        ) from None
