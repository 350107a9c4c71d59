"""Periodic tasks: Celery beat's scheduler, sending through the service's ``submit``.

The schedule math (``every`` seconds or a cron line, due times, the heap of
entries) is Celery's ``beat.Scheduler``. Two things differ from ``celery beat``:
a due entry goes through ``TaskService.submit`` (so it is recorded, and it works
in embedded mode, where there is no broker), and the loop waits on the daemon's
stop event instead of sleeping, so stopping takes no longer than a wake-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from celery.beat import Scheduler  # type: ignore[import-untyped]

Submit = Callable[[str, Mapping[str, Any]], str]


class SubmittingScheduler(Scheduler):  # type: ignore[misc]
    """A beat scheduler whose due entries are handed to ``submit``."""

    #: Celery's scheduler opens a broker producer for sending; ours never sends.
    producer = None

    def __init__(self, app: Any, submit: Submit, **kwargs: Any) -> None:
        self._submit = submit
        super().__init__(app, **kwargs)

    def install_default_entries(self, data: Any) -> None:
        """None: results expire by themselves (Redis TTL, or the embedded purge)."""

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> str:
        entry = self.reserve(entry) if advance else entry
        return self._submit(entry.task, dict(entry.kwargs or {}))


def run_beat(scheduler: Any, stop: threading.Event) -> None:
    """Tick ``scheduler`` until ``stop`` is set, waiting on it between due entries."""
    while not stop.is_set():
        delay = scheduler.tick()
        if delay:
            stop.wait(delay)
