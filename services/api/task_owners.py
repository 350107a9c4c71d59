"""Who submitted each background task: only they, or a superadmin, may follow or cancel it."""

from __future__ import annotations

from jaseci_like_services.api.db_source import ApiDbSource
from jaseci_like_services.api.errors import TaskNotVisible
from jaseci_like_services.api.types import TaskOwnerRow
from jaseci_like_services.group_config.types import CurrentUser, Role

from jaseci_like.repository import OffsetPagination, Resilience, utcnow


class TaskOwners:
    def __init__(self, source: ApiDbSource, resilience: Resilience) -> None:
        self._source = source
        self._resilience = resilience

    async def record(self, task_id: str, name: str, owner: CurrentUser) -> None:
        await self._resilience.call(
            "task_owner.record",
            lambda: self._source.add_task_owner(task_id, owner.id, name, utcnow()),
        )

    async def check(self, task_id: str, actor: CurrentUser) -> None:
        """TaskNotVisible unless ``actor`` submitted the task or is a superadmin.

        Someone else's task and an unknown id get the same answer, so task ids
        cannot be probed.
        """
        if actor.role is Role.SUPERADMIN:
            return
        owner = await self._resilience.call(
            "task_owner.get", lambda: self._source.task_owner(task_id)
        )
        if owner != actor.id:
            raise TaskNotVisible(f"no task with id {task_id!r} that you submitted")

    async def list(
        self, actor: CurrentUser, page: OffsetPagination
    ) -> tuple[list[TaskOwnerRow], int]:
        """The tasks ``actor`` submitted (every task for a superadmin), newest first,
        and their total count."""
        user_id = None if actor.role is Role.SUPERADMIN else actor.id
        return await self._resilience.call(
            "task_owner.list",
            lambda: self._source.list_task_owners(user_id, page.limit, page.offset),
        )
