"""``/v1/groups``: groups (projects) and their members, for admins."""

# No `from __future__ import annotations`: FastAPI reads the parameter annotations,
# and they name the `Caller` dependency local to each router factory.
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from jaseci_like_services.api.dto.v1 import (
    GroupCreateV1,
    GroupListV1,
    GroupRenameV1,
    GroupV1,
    UserListV1,
    UserV1,
)
from jaseci_like_services.api.dto.v1.mapping import group_list_v1, group_v1, user_list_v1, user_v1
from jaseci_like_services.api.routes.common import (
    ERRORS,
    DomainQuery,
    GroupParam,
    JsonBody,
    PageQuery,
    UserParam,
)
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.api.types import user_key
from jaseci_like_services.group_config.types import CurrentUser


def group_routes(api: ApiState, caller: Callable[..., Awaitable[CurrentUser]]) -> APIRouter:
    router = APIRouter(prefix="/v1/groups", tags=["groups"], responses=ERRORS)
    Caller = Annotated[CurrentUser, Depends(caller)]

    @router.get("", response_model=GroupListV1, operation_id="groups-list")
    async def list_groups(user: Caller, page: PageQuery, domain: DomainQuery = None) -> JsonBody:
        """Superadmin: every group (or a domain's); admin: their domain's; user: theirs."""
        found = await api.group_config().groups.search(domain=domain, pagination=page, user=user)
        return JsonBody(group_list_v1(found))

    @router.put("", status_code=201, response_model=GroupV1, operation_id="group-create")
    async def create_group(body: GroupCreateV1, user: Caller) -> JsonBody:
        group = await api.group_config().groups.create(body.name, domain=body.domain, user=user)
        return JsonBody(group_v1(group), status_code=201)

    @router.get("/{group}", response_model=GroupV1, operation_id="group-get")
    async def get_group(group: GroupParam, user: Caller, domain: DomainQuery = None) -> JsonBody:
        found = await api.group_config().groups.get(group, domain=domain, user=user)
        return JsonBody(group_v1(found))

    @router.patch("/{group}", response_model=GroupV1, operation_id="group-rename")
    async def rename_group(
        group: GroupParam, body: GroupRenameV1, user: Caller, domain: DomainQuery = None
    ) -> JsonBody:
        renamed = await api.group_config().groups.rename(group, body.name, domain=domain, user=user)
        return JsonBody(group_v1(renamed))

    @router.delete(
        "/{group}", status_code=204, response_class=Response, operation_id="group-delete"
    )
    async def delete_group(group: GroupParam, user: Caller, domain: DomainQuery = None) -> Response:
        """Remove the group with its members and dotfiles."""
        await api.group_config().groups.purge(group, domain=domain, user=user)
        return Response(status_code=204)

    @router.get("/{group}/members", response_model=UserListV1, operation_id="group-members-list")
    async def list_members(
        group: GroupParam,
        user: Caller,
        page: PageQuery,
        domain: DomainQuery = None,
    ) -> JsonBody:
        members = await api.group_config().groups.members(
            group, domain=domain, pagination=page, user=user
        )
        return JsonBody(user_list_v1(members))

    @router.put(
        "/{group}/members/{member}",
        status_code=201,
        response_model=UserV1,
        operation_id="group-member-add",
    )
    async def add_member(
        group: GroupParam, member: UserParam, user: Caller, domain: DomainQuery = None
    ) -> JsonBody:
        added = await api.group_config().groups.add_member(
            group, user_key(member), domain=domain, user=user
        )
        return JsonBody(user_v1(added), status_code=201)

    @router.delete(
        "/{group}/members/{member}",
        status_code=204,
        response_class=Response,
        operation_id="group-member-remove",
    )
    async def remove_member(
        group: GroupParam, member: UserParam, user: Caller, domain: DomainQuery = None
    ) -> Response:
        await api.group_config().groups.remove_member(
            group, user_key(member), domain=domain, user=user
        )
        return Response(status_code=204)

    return router
