"""The interface both ways of running tasks (embedded, Celery) implement."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from jaseci_like_services.task.context import TaskFunc
from jaseci_like_services.task.status import TaskStatus


class Runner(Protocol):
    """Runs the tasks of one started task service; built by ``run``, closed by ``teardown``."""

    def register(self, name: str, func: TaskFunc) -> None:
        """Make ``func`` runnable under ``name`` (also after the worker started)."""

    def submit(self, name: str, func: TaskFunc, kwargs: Mapping[str, Any]) -> str:
        """Queue one run; its id at once."""

    def status(self, task_id: str) -> TaskStatus:
        """The task's status now; TaskNotFound for an unknown id."""

    def cancel(self, task_id: str) -> TaskStatus:
        """Ask the task to stop: REVOKED at once when it had not started."""

    def wait(self, task_id: str, timeout: float | None) -> TaskStatus:
        """The status once done, or as it is when ``timeout`` passes."""

    def daemons(self) -> dict[str, Callable[[], object]]:
        """Library loops to run as the service's daemons (stopped by :meth:`close`)."""

    def wait_ready(self, timeout: float) -> None:
        """Return once the daemons serve; raise when they cannot."""

    def close(self, timeout: float) -> None:
        """Stop the daemons and release connections, within ``timeout`` seconds."""

    def health(self) -> bool:
        """A cheap check of what the runner depends on."""
