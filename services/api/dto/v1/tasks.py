"""Background task bodies: the answer to a submission, and a task's status."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from jaseci_like_services.api.dto.v1.common import PageV1
from pydantic import BaseModel, Field

TaskStateV1 = Literal["PENDING", "STARTED", "PROGRESS", "SUCCESS", "FAILURE", "REVOKED"]


class TaskAcceptedV1(BaseModel):
    """202: the work was handed to the task service; follow it at ``status_url``."""

    task_id: str
    status_url: str


class TaskStatusV1(BaseModel):
    task_id: str
    name: str
    state: TaskStateV1
    #: 0..1 while PROGRESS; 1 once SUCCESS.
    progress: float | None = Field(default=None, ge=0, le=1)
    message: str | None = None
    #: What the task returned (SUCCESS only).
    result: Any = None
    #: One line saying what went wrong (FAILURE only).
    error: str | None = None
    #: The stable code of what went wrong (FAILURE only), as in error bodies:
    #: ``forbidden``, ``user_not_found``, ``api_key_revoked``...; ``task_failed``
    #: when the error has no code of its own.
    error_code: str | None = None


class TaskSummaryV1(BaseModel):
    """One task of ``GET /v1/tasks``: who submitted it and when, and its status now."""

    task_id: str
    name: str
    user_id: uuid.UUID
    submitted_at: dt.datetime
    #: None once the task service no longer keeps its record (``task.result_ttl``).
    status: TaskStatusV1 | None


class TaskListV1(PageV1):
    items: list[TaskSummaryV1]
