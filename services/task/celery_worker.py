"""A Celery worker running in a thread of this process, stoppable from any thread.

Celery's own ``app.Worker`` is the command-line worker: it installs signal
handlers, prints a banner, redirects stdout and sets up logging for the whole
process. Inside a host application we use the ``WorkController`` underneath it,
with three things Celery assumes of a worker that owns its process made explicit:

- the event loop (kombu ``Hub``) is process-global in Celery; each of our workers
  gets a hub of its own, so two services (or a service and a test's raw Celery
  worker) can run workers in one process;
- task threads find their app as the thread's *current* app; the pool's threads
  are told which app that is, instead of making ours the process default;
- stopping is done inside the worker's own loop thread (a ``WorkerShutdown``
  raised there, as Celery's remote ``shutdown`` command does), because closing
  its broker connection from another thread races with the loop's reads. Celery
  stops a worker through process-global flags; ours has a flag of its own, seen
  by the loop on every turn and by the reconnect loop while the broker is down.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from celery.concurrency.thread import TaskPool  # type: ignore[import-untyped]
from celery.exceptions import WorkerShutdown  # type: ignore[import-untyped]
from celery.worker.consumer import Consumer  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

#: Worker hub swaps happen one at a time (the global is read while building).
_BUILD_LOCK = threading.Lock()


class WorkerStoppedError(RuntimeError):
    """The worker's loop ended while nobody asked it to (broker gone for good, a
    remote shutdown command): the service notices and goes FAILED."""


class AppThreadPool(TaskPool):  # type: ignore[misc]
    """Celery's thread pool, whose threads take this pool's app as their current app."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.executor = ThreadPoolExecutor(
            max_workers=self.limit,
            initializer=self.app.set_current,
            thread_name_prefix=f"celery-pool-{self.app.main}",
        )


#: Attribute of a WorkController holding its stop flag.
STOPPING = "jaseci_like_stopping"


def _stop_if(stopping: threading.Event) -> None:
    if stopping.is_set():
        raise WorkerShutdown(0)


class StoppableConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, whose broker reconnect loop also gives up once its worker
    is asked to stop (Celery's own loop only looks at a process-global flag)."""

    def ensure_connected(self, conn: Any) -> Any:
        stopping: threading.Event | None = getattr(self.controller, STOPPING, None)
        if stopping is not None:
            retry = conn.ensure_connection

            def ensure_connection(*args: Any, callback: Any = None, **kwargs: Any) -> Any:
                def between_attempts() -> None:  # kombu calls it while it waits
                    _stop_if(stopping)
                    if callback is not None:
                        callback()

                return retry(*args, callback=between_attempts, **kwargs)

            conn.ensure_connection = ensure_connection
        return super().ensure_connected(conn)


def _wake() -> None:
    """Nothing: scheduling it wakes the worker's loop from its poll."""


def node_name() -> str:
    """A worker name unique on the broker: ``jaseci-like-<pid>-<hex>@<host>``."""
    return f"jaseci-like-{os.getpid()}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"


class InProcessWorker:
    """One Celery worker: :meth:`run` is its daemon target, :meth:`stop` ends it."""

    def __init__(self, app: Any, concurrency: int) -> None:
        from kombu.asynchronous import get_event_loop, set_event_loop

        self.app = app
        self.name = node_name()
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self._running = False
        self._stopping = threading.Event()
        with _BUILD_LOCK:
            previous = get_event_loop()
            set_event_loop(None)  # so the Hub step makes a hub for this worker alone
            try:
                self.controller: Any = app.WorkController(
                    hostname=self.name,
                    pool_cls=AppThreadPool,
                    consumer_cls=StoppableConsumer,
                    concurrency=concurrency,
                    without_mingle=True,
                    without_gossip=True,
                    without_heartbeat=True,
                    ready_callback=self._on_ready,
                    loglevel=logging.getLogger("celery").getEffectiveLevel(),
                )
            finally:
                set_event_loop(previous)
        setattr(self.controller, STOPPING, self._stopping)
        # Every turn of the worker's loop looks at the flag (a stop requested
        # while the loop was being rebuilt after a broker outage is not lost).
        hub = self.controller.hub
        if hub is not None:
            hub.on_tick.add(partial(_stop_if, self._stopping))

    def _on_ready(self, consumer: Any) -> None:
        self.ready.set()

    def run(self) -> None:
        """The daemon target: serve until :meth:`stop` (raises if it ends on its own)."""
        self._running = True
        self.app.set_current()  # this thread's current app, for the consumer's lookups
        try:
            if self._stopping.is_set():
                return  # stopped before it began
            self.controller.start()
        finally:
            self.stopped.set()
        if not self._stopping.is_set():
            raise WorkerStoppedError(f"celery worker {self.name} stopped on its own")

    def refresh_tasks(self) -> None:
        """Let a running worker accept tasks registered after it started."""
        consumer = getattr(self.controller, "consumer", None)
        if consumer is not None and self.ready.is_set():
            consumer.update_strategies()

    def stop(self, timeout: float) -> bool:
        """Ask the worker to finish its running tasks and stop; True once it has.

        The flag is seen by the loop on its next turn (woken now), by the reconnect
        loop between attempts, or at once by a worker still starting.
        """
        self._stopping.set()
        hub = self.controller.hub
        if hub is not None:
            hub.call_soon(_wake)
        if not self._running:
            return True  # never started: nothing to wait for
        done = self.stopped.wait(timeout)
        if not done:
            log.warning("celery worker %s did not stop within %.2fs", self.name, timeout)
        return done
