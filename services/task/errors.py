"""Typed errors of the task service; each has a stable ``code``.

Messages name the task or task id and say what to do next; none carries a
secret (URLs with credentials are masked before they reach a message).
"""

from __future__ import annotations

from jaseci_like import JaseciLikeError


class TaskError(JaseciLikeError):
    """Base of every error the task service raises on purpose."""

    code = "task_error"


class TaskServiceNotRunning(TaskError):
    """``submit``/``status``/``cancel``/``wait`` on a task service that is not RUNNING."""

    code = "task_service_not_running"


class UnknownTask(TaskError, LookupError):
    """``submit`` (or a periodic entry) named a task nobody registered."""

    code = "task_unknown"


class TaskNotFound(TaskError, LookupError):
    """No task with this id: never submitted here, or its record expired (``result_ttl``)."""

    code = "task_not_found"


class TaskArgumentsError(TaskError, ValueError):
    """The keyword arguments of ``submit`` cannot be sent to a worker (not JSON)."""

    code = "task_arguments_invalid"


class TaskRegistrationError(TaskError, ValueError):
    """A task that cannot be registered: a bad name, not callable, async, or a name
    already taken by another function."""

    code = "task_registration_invalid"


class TaskDbUnavailable(TaskError):
    """A task asked for a database session, but no db service is registered or running."""

    code = "task_db_unavailable"


class TaskFailed(TaskError):
    """How a task's failure travels through Celery's result backend: one masked line
    naming the original exception, never its traceback's secrets, and the original's
    stable code (``error_code``) when it had one. Also the code of a failure whose
    exception had none."""

    code = "task_failed"

    def __init__(self, line: str, error_code: str | None = None) -> None:
        # Both in ``args``: Celery stores an exception as its args and rebuilds it so.
        super().__init__(line, error_code)
        self.line = line
        self.error_code = error_code

    def __str__(self) -> str:
        return self.line


class TaskRevoked(BaseException):
    """Raised inside a task by ``ctx.progress`` once the task has been cancelled.

    A ``BaseException``, as :class:`asyncio.CancelledError` is, so that a task's own
    ``except Exception`` does not swallow the cancellation by accident.
    """
