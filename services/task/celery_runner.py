"""Tasks run by Celery workers, with Redis as broker and result backend.

Each registered function becomes a Celery task (``bind=True``) that wraps it with a
:class:`TaskContext`. Cancellation is Celery's ``revoke`` (live workers drop the
queued copies they hold) plus a Redis key ``jaseci-like:task:revoked:<id>``, so a
task cancelled while running, or while no worker was listening, stops too.

STARTED and PROGRESS (``ctx.progress``) are written in Celery's result format by
one Lua script that checks that key first: one round trip per update, and
atomic, so a ``cancel`` that read PENDING (having set the key before reading) is
always seen by the worker, which then never writes STARTED. Unlike Celery's
``update_state`` these states are stored but not published: a waiter wakes for
the outcome only, and ``status`` reads them from the key.

A second key, ``jaseci-like:task:name:<id>``, is written by ``submit``: it names the
task of a PENDING id, and tells an id we never issued (``TaskNotFound``) from one
that is merely waiting, which Celery alone cannot (it says PENDING for both).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import redis
from celery import states  # type: ignore[import-untyped]
from celery.exceptions import Ignore  # type: ignore[import-untyped]
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult  # type: ignore[import-untyped]
from celery.worker.state import revoked as revoked_here  # type: ignore[import-untyped]
from jaseci_like_services.task.celery_worker import InProcessWorker
from jaseci_like_services.task.context import TaskContext, TaskFunc, TaskResources
from jaseci_like_services.task.errors import TaskFailed, TaskNotFound, TaskRevoked
from jaseci_like_services.task.status import TaskState, TaskStatus, error_code, error_line

log = logging.getLogger(__name__)
S = TaskState

KEY_PREFIX = "jaseci-like:task"
#: Names of the ids this process submitted, kept so ``wait`` needs no lookup.
SUBMITTED_CACHE = 10_000
PROGRESS = "PROGRESS"
#: Celery states we can meet, as ours (RETRY and RECEIVED: waiting to run again).
_STATES = {
    states.PENDING: S.PENDING,
    states.RECEIVED: S.PENDING,
    states.RETRY: S.PENDING,
    states.STARTED: S.STARTED,
    PROGRESS: S.PROGRESS,
    states.SUCCESS: S.SUCCESS,
    states.FAILURE: S.FAILURE,
    states.REVOKED: S.REVOKED,
}


# KEYS: Celery's meta key of the task, its revocation key, its name key; ARGV: the
# encoded meta, seconds to keep it. 1 (and nothing written) when revoked. Like
# Celery's own store it never overwrites a SUCCESS (a redelivered duplicate must
# not undo a finished task). The name's lifetime is renewed, so a task that runs
# for longer than result_ttl keeps its id known.
_STORE_UNLESS_REVOKED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['status'] == 'SUCCESS' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return 0
"""


def name_key(task_id: str) -> str:
    return f"{KEY_PREFIX}:name:{task_id}"


def revoked_key(task_id: str) -> str:
    return f"{KEY_PREFIX}:revoked:{task_id}"


def to_status(task_id: str, name: str, state: str, info: Any) -> TaskStatus:
    """Our status from a Celery state and its ``info`` (result, exception or meta)."""
    ours = _STATES.get(state, S.PENDING)
    if ours is S.PROGRESS:
        meta = info if isinstance(info, dict) else {}
        return TaskStatus(task_id, name, ours, meta.get("fraction"), meta.get("message"))
    if ours is S.SUCCESS:
        return TaskStatus(task_id, name, ours, 1.0, result=info)
    if ours is S.FAILURE:
        if isinstance(info, BaseException):
            return TaskStatus(
                task_id, name, ours, error=error_line(info), error_code=error_code(info)
            )
        return TaskStatus(task_id, name, ours, error=str(info), error_code=TaskFailed.code)
    return TaskStatus(task_id, name, ours)


class CeleryRunner:
    """Submits through Celery, reads status from the result backend; maybe runs a worker."""

    def __init__(
        self,
        app: Any,
        *,
        backend_url: str,
        result_ttl: int,
        resources: TaskResources,
        workers: int,
    ) -> None:
        self.app = app
        self._ttl = result_ttl
        self._resources = resources
        self._redis = redis.Redis.from_url(
            backend_url, socket_connect_timeout=5.0, socket_timeout=10.0
        )
        try:
            self._redis.ping()  # an unreachable Redis fails the start, not the first submit
        except BaseException:
            self._redis.close()
            raise
        self._store_script = self._redis.register_script(_STORE_UNLESS_REVOKED)
        self.worker = InProcessWorker(app, workers) if workers > 0 else None
        self._submitted: OrderedDict[str, str] = OrderedDict()
        self._submitted_lock = threading.Lock()

    # -- tasks -----------------------------------------------------------------------
    def register(self, name: str, func: TaskFunc) -> None:
        if name in self.app.tasks:
            return
        runner = self

        def run(task: Any, **kwargs: Any) -> Any:
            return runner._execute(task, name, func, kwargs)

        # Celery compiles a signature from the function's name: an identifier.
        run.__name__ = run.__qualname__ = "task_" + re.sub(r"\W", "_", name)
        # throws: a failure is logged once, by _execute, as one line; Celery's own
        # report of it (ERROR with a traceback) drops to INFO without one.
        self.app.task(name=name, bind=True, shared=False, typing=False, throws=(TaskFailed,))(run)
        if self.worker is not None:
            self.worker.refresh_tasks()

    def _execute(self, task: Any, name: str, func: TaskFunc, kwargs: dict[str, Any]) -> Any:
        """One run inside a worker: STARTED, the function with its context, the outcome."""
        task_id: str = task.request.id
        # Celery drops a revoked task it receives; one already handed to the pool
        # is caught here by the same in-memory list (filled by the revoke
        # broadcast), and by the Redis key for workers that missed the broadcast.
        if task_id in revoked_here or self._store(task, states.STARTED, {}):
            self._give_up(task)
        ctx = TaskContext(
            task_id,
            name,
            report=lambda fraction, message: self._store(
                task, PROGRESS, {"fraction": fraction, "message": message}
            ),
            is_cancelled=lambda: self._revoked(task_id),
            resources=self._resources,
        )
        try:
            return func(ctx, **kwargs)
        except TaskRevoked:
            self._give_up(task)
        except Exception as exc:
            # Only the masked line reaches the result backend and the worker's log:
            # the original exception (and its traceback) may carry a secret.
            line = error_line(exc)
            log.warning("task %s[%s] failed: %s", name, task_id, line)
            raise TaskFailed(line, error_code(exc)) from None

    def _store(self, task: Any, state: str, info: dict[str, Any]) -> bool:
        """Write a non-final state in Celery's format, unless the task was cancelled
        (then True, and nothing written)."""
        task_id: str = task.request.id
        backend = task.backend
        meta: dict[str, Any] = {
            "status": state,
            "result": info,
            "traceback": None,
            "children": [],
            "date_done": None,
            "task_id": task_id,
        }
        keys = [backend.get_key_for_task(task_id), revoked_key(task_id), name_key(task_id)]
        return bool(self._store_script(keys=keys, args=[backend.encode(meta), self._ttl]))

    def _give_up(self, task: Any) -> NoReturn:
        task.backend.mark_as_revoked(task.request.id, "cancelled", request=task.request)
        raise Ignore()  # the state stays REVOKED; Celery stores nothing more

    def _revoked(self, task_id: str) -> bool:
        return bool(self._redis.exists(revoked_key(task_id)))

    # -- the API ---------------------------------------------------------------------
    def submit(self, name: str, func: TaskFunc, kwargs: Mapping[str, Any]) -> str:
        if name not in self.app.tasks:
            self.register(name, func)
        task_id = str(uuid.uuid4())
        self._redis.set(name_key(task_id), name, ex=self._ttl)
        self.app.send_task(name, kwargs=dict(kwargs), task_id=task_id)
        with self._submitted_lock:
            self._submitted[task_id] = name
            if len(self._submitted) > SUBMITTED_CACHE:
                self._submitted.popitem(last=False)
        return task_id

    def status(self, task_id: str) -> TaskStatus:
        backend = self.app.backend
        # One round trip for the name and Celery's meta (same Redis, by construction).
        name, raw = self._redis.mget(name_key(task_id), backend.get_key_for_task(task_id))
        if name is None:
            raise TaskNotFound(
                f"no task with id {task_id!r}: never submitted, or submitted more than "
                f"{self._ttl}s ago (task.result_ttl)"
            )
        meta = backend.decode_result(raw) if raw else {"status": states.PENDING, "result": None}
        name = name if isinstance(name, str) else name.decode()
        return to_status(task_id, name, meta["status"], meta["result"])

    def cancel(self, task_id: str) -> TaskStatus:
        self.status(task_id)  # TaskNotFound before anything is written
        # The key first: a worker that writes STARTED after our read below checks it.
        self._redis.set(revoked_key(task_id), 1, ex=self._ttl)
        self.app.control.revoke(task_id)
        current = self.status(task_id)
        if current.state is S.PENDING:
            self.app.backend.mark_as_revoked(task_id, "cancelled")
            return TaskStatus(task_id, current.name, S.REVOKED)
        return current

    def wait(self, task_id: str, timeout: float | None) -> TaskStatus:
        name = self._submitted.get(task_id)
        if name is None:  # not ours: make sure it exists before blocking on it
            current = self.status(task_id)
            if current.done:
                return current
            name = current.name
        result = AsyncResult(task_id, app=self.app)
        try:
            # disable_sync_subtasks: Celery refuses to block in a process that runs
            # a worker (it cannot tell our caller's thread from a task's).
            result.get(timeout=timeout, propagate=False, disable_sync_subtasks=False)
        except CeleryTimeout:
            return self.status(task_id)
        finally:
            self._stop_listening(result)
        return to_status(task_id, name, result.state, result.info)

    def _stop_listening(self, result: AsyncResult) -> None:
        """Unsubscribe from ``result``'s channel now. Left to ``AsyncResult.__del__``
        (a wait that timed out stays subscribed), the unsubscribe runs whenever the
        object is collected, possibly after Redis is gone, and fails there with
        nobody to tell. Celery forgets the subscription before sending the command,
        so a failure here leaves nothing for ``__del__`` to retry."""
        try:
            self.app.backend.remove_pending_result(result)
        except (redis.RedisError, RuntimeError, OSError) as exc:
            log.debug("task %s: unsubscribing from its result failed: %s", result.id, exc)

    # -- lifecycle -------------------------------------------------------------------
    def daemons(self) -> dict[str, Callable[[], object]]:
        return {} if self.worker is None else {"worker": self.worker.run}

    def wait_ready(self, timeout: float) -> None:
        worker = self.worker
        if worker is None:
            return
        if not worker.ready.wait(timeout) or worker.stopped.is_set():
            raise RuntimeError(
                f"celery worker {worker.name} did not start within {timeout:g}s "
                "(is the broker reachable?)"
            )

    def close(self, timeout: float) -> None:
        try:
            if self.worker is not None:
                self.worker.stop(timeout)
        finally:
            self._redis.close()
            self.app.close()

    def health(self) -> bool:
        return bool(self._redis.ping())
