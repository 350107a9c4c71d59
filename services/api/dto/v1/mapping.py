"""Service values to v1 bodies: the one place that knows both shapes."""

from __future__ import annotations

from typing import Any

from jaseci_like_services.api.dto.v1.dotfiles import DotfileListV1, DotfileV1, DotfileWrittenV1
from jaseci_like_services.api.dto.v1.groups import GroupListV1, GroupV1
from jaseci_like_services.api.dto.v1.tasks import TaskStatusV1
from jaseci_like_services.api.dto.v1.users import UserListV1, UserV1
from jaseci_like_services.group_config.types import (
    Dotfile,
    DotfileList,
    DotfileResult,
    Group,
    User,
)
from jaseci_like_services.task.status import TaskStatus

from jaseci_like.repository import Page


def _page(page: Page[Any]) -> dict[str, Any]:
    return {
        "total_count": page.total_count,
        "has_next": page.has_next,
        "has_previous": page.has_previous,
        "next_cursor": page.next_cursor,
        "previous_cursor": page.previous_cursor,
    }


def dotfile_v1(d: Dotfile) -> DotfileV1:
    return DotfileV1(
        id=d.id,
        group_id=d.group_id,
        path=d.path,
        permission=d.permission,
        data=d.data,
        status=d.status.value,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


def dotfile_list_v1(listing: DotfileList) -> DotfileListV1:
    # One validation of plain values, not one model per dotfile: listings are hot.
    items = [
        {
            "id": d.id,
            "group_id": d.group_id,
            "path": d.path,
            "permission": d.permission,
            "data": d.data,
            "status": d.status.value,
            "created_at": d.created_at,
            "updated_at": d.updated_at,
        }
        for d in listing.page.items
    ]
    body = {"items": items, "leftover_space": listing.leftover_space, **_page(listing.page)}
    return DotfileListV1.model_validate(body)


def dotfile_written_v1(result: DotfileResult) -> DotfileWrittenV1:
    return DotfileWrittenV1(
        dotfile=dotfile_v1(result.dotfile), leftover_space=result.leftover_space
    )


def group_v1(g: Group) -> GroupV1:
    return GroupV1(id=g.id, domain=g.domain, name=g.name, created_at=g.created_at)


def group_list_v1(page: Page[Group]) -> GroupListV1:
    return GroupListV1(items=[group_v1(g) for g in page.items], **_page(page))


def user_v1(u: User) -> UserV1:
    return UserV1(
        id=u.id, email=u.email, role=u.role.value, domain=u.domain, created_at=u.created_at
    )


def user_list_v1(page: Page[User]) -> UserListV1:
    return UserListV1(items=[user_v1(u) for u in page.items], **_page(page))


def task_status_v1(status: TaskStatus) -> TaskStatusV1:
    return TaskStatusV1(
        task_id=status.id,
        name=status.name,
        state=status.state.value,
        progress=status.progress,
        message=status.message,
        result=status.result,
        error=status.error,
        error_code=status.error_code,
    )
