"""``/v1/tasks/{task_id}``: the status of background work, and cancelling it.

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
from jaseci_like_services.api.errors import ServiceUnavailable
from jaseci_like_services.api.routes.common import ERRORS, JsonBody
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.group_config.types import CurrentUser

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


def task_routes(api: ApiState, caller: Callable[..., Awaitable[CurrentUser]]) -> APIRouter:
    router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=ERRORS)
    Caller = Annotated[CurrentUser, Depends(caller)]

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
