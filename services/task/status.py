"""What ``status`` answers: a task's state, progress, result or error."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jaseci_like_services.task.errors import TaskFailed

from jaseci_like import JaseciLikeError
from jaseci_like.config.secrets import mask_url

#: Longest error line kept; the rest of a huge message is cut.
MAX_ERROR = 1000


class TaskState(StrEnum):
    """The states a task goes through (Celery's names)."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"


#: States a task never leaves.
DONE = frozenset({TaskState.SUCCESS, TaskState.FAILURE, TaskState.REVOKED})


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """One look at a task.

    ``progress`` is the fraction (0..1) the task last reported while PROGRESS, and
    1.0 once SUCCESS; ``message`` goes with it. ``result`` is set for SUCCESS,
    ``error`` (one line, secrets masked) and ``error_code`` (the error's stable
    code, ``task_failed`` for an error that has none) for FAILURE.
    """

    id: str
    name: str
    state: TaskState
    progress: float | None = None
    message: str | None = None
    result: Any = None
    error: str | None = None
    error_code: str | None = None

    @property
    def done(self) -> bool:
        """True once SUCCESS, FAILURE or REVOKED: the status will not change again."""
        return self.state in DONE


def error_code(exc: BaseException) -> str:
    """The stable code of a task's error: a typed error's own (carried through Celery
    by ``TaskFailed``), else ``task_failed``."""
    if isinstance(exc, TaskFailed):
        return exc.error_code or TaskFailed.code
    return exc.code if isinstance(exc, JaseciLikeError) else TaskFailed.code


def error_line(exc: BaseException) -> str:
    """``"ValueError: what went wrong"`` on one line, URL passwords masked."""
    text = str(exc) if isinstance(exc, TaskFailed) else f"{type(exc).__name__}: {exc}"
    line = " ".join(mask_url(text).split())
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 3] + "..."
