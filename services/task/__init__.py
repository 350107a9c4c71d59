"""The task service: named background tasks with status, progress and cancellation.

>>> from jaseci_like_services.task import TaskContext, TaskService, TaskState
"""

from jaseci_like_services.task.config import PeriodicTask, TaskConfig
from jaseci_like_services.task.context import TaskContext, TaskFunc
from jaseci_like_services.task.errors import (
    TaskArgumentsError,
    TaskDbUnavailable,
    TaskError,
    TaskFailed,
    TaskNotFound,
    TaskRegistrationError,
    TaskRevoked,
    TaskServiceNotRunning,
    UnknownTask,
)
from jaseci_like_services.task.service import TaskService
from jaseci_like_services.task.status import TaskState, TaskStatus

__all__ = [
    "PeriodicTask",
    "TaskArgumentsError",
    "TaskConfig",
    "TaskContext",
    "TaskDbUnavailable",
    "TaskError",
    "TaskFailed",
    "TaskFunc",
    "TaskNotFound",
    "TaskRegistrationError",
    "TaskRevoked",
    "TaskService",
    "TaskServiceNotRunning",
    "TaskState",
    "TaskStatus",
    "UnknownTask",
]
