"""``/v1/tasks``: the caller's background work, its status, and cancelling it.

Only the user who submitted a task (or a superadmin) sees or cancels it; for
anyone else it does not exist. Task service calls run in a worker thread: in
Celery mode they talk to Redis, which must not block the shared loop.
"""

# No `from __future__ import annotations`: FastAPI reads the parameter annotations,
# and they name the `Caller` dependency local to each router factory.
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from jaseci_like_services.api.dto.v1 import TaskAcceptedV1, TaskStatusV1
from jaseci_like_services.api.dto.v1.mapping import task_status_v1
from jaseci_like_services.api.dto.v1.tasks import TaskListV1, TaskSummaryV1
from jaseci_like_services.api.errors import ServiceUnavailable
from jaseci_like_services.api.routes.common import ERRORS, JsonBody, PageQuery
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.api.types import TaskOwnerRow
from jaseci_like_services.group_config.types import CurrentUser
from jaseci_like_services.task import TaskNotFound, TaskService

from jaseci_like import JaseciLikeError
from jaseci_like.config.secrets import mask_url

TaskId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
T = TypeVar("T")
log = logging.getLogger(__name__)


async def _call(func: Callable[[], T]) -> T:
    """A task service call in a worker thread; its backend failing (Redis down in
    Celery mode) is a 503, its own typed errors (an unknown id) pass as they are."""
    try:
        return await run_in_threadpool(func)
    except JaseciLikeError:
        raise
    except Exception as exc:
        log.warning("the task service failed: %s", mask_url(f"{type(exc).__name__}: {exc}"))
        raise ServiceUnavailable("the task service cannot be reached; retry in a moment") from exc


async def submit(api: ApiState, name: str, kwargs: dict[str, Any], user: CurrentUser) -> JsonBody:
    """Hand ``name(**kwargs)`` to the task service; 202 with the task's id and status URL."""
    tasks = api.tasks()
    task_id = await _call(lambda: tasks.submit(name, **kwargs))
    await api.owners.record(task_id, name, user)
    url = f"{api.settings.root_path}/v1/tasks/{task_id}"
    response = JsonBody(TaskAcceptedV1(task_id=task_id, status_url=url), status_code=202)
    response.headers["Location"] = url
    return response


def _summaries(tasks: TaskService, rows: list[TaskOwnerRow]) -> list[TaskSummaryV1]:
    """Each recorded task with its status now (None once the task service forgot it)."""
    found = []
    for row in rows:
        try:
            status: TaskStatusV1 | None = task_status_v1(tasks.status(row.task_id))
        except TaskNotFound:
            status = None
        found.append(
            TaskSummaryV1(
                task_id=row.task_id,
                name=row.name,
                user_id=row.user_id,
                submitted_at=row.created_at,
                status=status,
            )
        )
    return found


def task_routes(api: ApiState, caller: Callable[..., Awaitable[CurrentUser]]) -> APIRouter:
    router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=ERRORS)
    Caller = Annotated[CurrentUser, Depends(caller)]

    @router.get("", response_model=TaskListV1, operation_id="tasks-list")
    async def list_tasks(user: Caller, page: PageQuery) -> JsonBody:
        """The tasks the caller submitted (every task for a superadmin), newest first,
        each with its status now."""
        rows, total = await api.owners.list(user, page)
        tasks = api.tasks()
        items = await _call(lambda: _summaries(tasks, rows))
        return JsonBody(
            TaskListV1(
                items=items,
                total_count=total,
                has_next=page.offset + len(rows) < total,
                has_previous=page.offset > 0,
            )
        )

    @router.get("/{task_id}", response_model=TaskStatusV1, operation_id="task-status")
    async def task_status(task_id: TaskId, user: Caller) -> JsonBody:
        """The task's state, progress, and its result once it succeeded."""
        await api.owners.check(task_id, user)
        tasks = api.tasks()
        return JsonBody(task_status_v1(await _call(lambda: tasks.status(task_id))))

    @router.post("/{task_id}/cancel", response_model=TaskStatusV1, operation_id="task-cancel")
    async def task_cancel(task_id: TaskId, user: Caller) -> JsonBody:
        """Ask the task to stop: one not started yet is REVOKED at once; a running one
        stops at its next progress report. A finished task stays as it is."""
        await api.owners.check(task_id, user)
        tasks = api.tasks()
        return JsonBody(task_status_v1(await _call(lambda: tasks.cancel(task_id))))

    return router
