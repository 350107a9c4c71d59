"""Tasks run on a thread pool of this process; their state kept in a dict.

No broker and no polling: ``submit`` hands the call to a ``ThreadPoolExecutor``
owned by the service (its threads are the worker), so a task starts as soon as a
thread is free. State lives in memory under one lock; finished records are
dropped ``result_ttl`` seconds after they finished.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from jaseci_like_services.task.context import TaskContext, TaskFunc, TaskResources
from jaseci_like_services.task.errors import TaskNotFound, TaskRevoked, TaskServiceNotRunning
from jaseci_like_services.task.status import (
    DONE,
    TaskState,
    TaskStatus,
    error_code,
    error_line,
)

log = logging.getLogger(__name__)
S = TaskState


@dataclass(eq=False)
class _Record:
    id: str
    name: str
    state: TaskState = S.PENDING
    fraction: float | None = None
    message: str | None = None
    result: Any = None
    error: str | None = None
    error_code: str | None = None
    cancel_requested: bool = False
    future: Future[None] | None = field(default=None, repr=False)

    def snapshot(self) -> TaskStatus:
        progress = 1.0 if self.state is S.SUCCESS else self.fraction
        return TaskStatus(
            self.id,
            self.name,
            self.state,
            progress,
            self.message,
            self.result,
            self.error,
            self.error_code,
        )


class EmbeddedRunner:
    """The in-process runner: a thread pool and a dict of records."""

    def __init__(self, workers: int, result_ttl: float, resources: TaskResources, label: str):
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{label}:task")
        self._ttl = result_ttl
        self._resources = resources
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        #: (finished at, id), oldest first: what to forget once result_ttl passed.
        self._finished: deque[tuple[float, str]] = deque()

    # -- the API ---------------------------------------------------------------------
    def register(self, name: str, func: TaskFunc) -> None:
        """Nothing to do: ``submit`` is handed the function."""

    def submit(self, name: str, func: TaskFunc, kwargs: Mapping[str, Any]) -> str:
        record = _Record(str(uuid.uuid4()), name)
        with self._lock:
            self._forget_expired(time.monotonic())
            self._records[record.id] = record
        try:
            record.future = self._executor.submit(self._execute, record, func, dict(kwargs))
        except RuntimeError:  # the pool was shut down: the service is stopping
            with self._lock:
                self._records.pop(record.id, None)
            raise TaskServiceNotRunning("the task service is stopping") from None
        return record.id

    def status(self, task_id: str) -> TaskStatus:
        record = self._record(task_id)
        with self._lock:
            return record.snapshot()

    def cancel(self, task_id: str) -> TaskStatus:
        record = self._record(task_id)
        with self._lock:
            self._cancel(record)
            return record.snapshot()

    def wait(self, task_id: str, timeout: float | None) -> TaskStatus:
        record = self._record(task_id)
        future = record.future
        if future is not None:
            # Cheaper than concurrent.futures.wait for one future. Cancelled: it is
            # REVOKED already; timed out: the status as it is.
            with suppress(CancelledError, FutureTimeout):
                future.exception(timeout)
        with self._lock:
            return record.snapshot()

    # -- running ---------------------------------------------------------------------
    def _execute(self, record: _Record, func: TaskFunc, kwargs: dict[str, Any]) -> None:
        with self._lock:
            if record.cancel_requested:
                self._finish(record, S.REVOKED)
                return
            record.state = S.STARTED
        ctx = TaskContext(
            record.id,
            record.name,
            report=partial(self._progress, record),
            is_cancelled=lambda: record.cancel_requested,
            resources=self._resources,
        )
        try:
            result = func(ctx, **kwargs)
        except TaskRevoked:
            with self._lock:
                self._finish(record, S.REVOKED)
        except BaseException as exc:
            line = error_line(exc)
            log.warning("task %s[%s] failed: %s", record.name, record.id, line)
            with self._lock:
                record.error, record.error_code = line, error_code(exc)
                self._finish(record, S.FAILURE)
            if not isinstance(exc, Exception):
                raise  # SystemExit and friends keep going up
        else:
            with self._lock:
                record.result = result
                self._finish(record, S.SUCCESS)

    def _progress(self, record: _Record, fraction: float, message: str | None) -> bool:
        with self._lock:
            if record.cancel_requested:
                return True
            record.state = S.PROGRESS
            record.fraction = fraction
            record.message = message
            return False

    def _cancel(self, record: _Record) -> None:
        """Under the lock: flag the task; one that has not started is REVOKED now."""
        if record.state in DONE:
            return
        record.cancel_requested = True
        if record.state is S.PENDING and record.future is not None and record.future.cancel():
            self._finish(record, S.REVOKED)

    def _finish(self, record: _Record, state: TaskState) -> None:
        """Under the lock: the final state, and a place in the expiry queue."""
        record.state = state
        record.fraction = record.message = None
        self._finished.append((time.monotonic(), record.id))

    def _forget_expired(self, now: float) -> None:
        """Under the lock: drop records that finished more than result_ttl ago."""
        finished, records, horizon = self._finished, self._records, now - self._ttl
        while finished and finished[0][0] < horizon:
            records.pop(finished.popleft()[1], None)

    def _record(self, task_id: str) -> _Record:
        record = self._records.get(task_id)
        if record is None:
            raise TaskNotFound(
                f"no task with id {task_id!r}: never submitted to this service, "
                f"or finished more than {self._ttl:g}s ago (task.result_ttl)"
            )
        return record

    # -- lifecycle ---------------------------------------------------------------------
    def daemons(self) -> dict[str, Callable[[], object]]:
        return {}  # the pool's threads are the worker

    def wait_ready(self, timeout: float) -> None:
        """Ready at once: the pool starts its threads on demand."""

    def close(self, timeout: float) -> None:
        """Revoke what waits, ask running tasks to stop, join the pool's threads."""
        with self._lock:
            for record in self._records.values():
                self._cancel(record)
            running = [r.future for r in self._records.values() if r.future is not None]
        self._executor.shutdown(wait=False, cancel_futures=True)
        wait_futures(running, timeout)
        with self._lock:
            still = [r for r in self._records.values() if r.state not in DONE]
        if not still:
            self._executor.shutdown(wait=True)  # idle threads exit now, none is left behind
        else:
            log.warning(
                "task service stopped with %d task(s) still running (they never "
                "checked ctx.progress / ctx.cancelled): %s",
                len(still),
                ", ".join(f"{r.name}[{r.id}]" for r in still[:5]),
            )

    def health(self) -> bool:
        return True
