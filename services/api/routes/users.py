"""``/v1/users``: users and their roles, for admins (and ``/v1/users/me`` for anyone)."""

# No `from __future__ import annotations`: FastAPI reads the parameter annotations,
# and they name the `Caller` dependency local to each router factory.
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from jaseci_like_services.api.dto.v1 import UserCreateV1, UserListV1, UserRoleV1, UserV1
from jaseci_like_services.api.dto.v1.mapping import user_list_v1, user_v1
from jaseci_like_services.api.routes.common import (
    ERRORS,
    DomainQuery,
    JsonBody,
    PageQuery,
    UserParam,
)
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.api.types import user_key
from jaseci_like_services.group_config.types import CurrentUser


def user_routes(api: ApiState, caller: Callable[..., Awaitable[CurrentUser]]) -> APIRouter:
    router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERRORS)
    Caller = Annotated[CurrentUser, Depends(caller)]

    @router.get("", response_model=UserListV1, operation_id="users-list")
    async def list_users(user: Caller, page: PageQuery, domain: DomainQuery = None) -> JsonBody:
        """Superadmin: every user (or a domain's); admin: their domain's; user: themselves."""
        found = await api.group_config().users.search(domain=domain, pagination=page, user=user)
        return JsonBody(user_list_v1(found))

    @router.put("", status_code=201, response_model=UserV1, operation_id="user-create")
    async def create_user(body: UserCreateV1, user: Caller) -> JsonBody:
        """A new user (no API key: keys are issued with `jaseci-like api-keys create`)."""
        created = await api.group_config().users.create(
            body.email, body.role, domain=body.domain, user=user
        )
        return JsonBody(user_v1(created), status_code=201)

    @router.get("/me", response_model=UserV1, operation_id="user-me-get")
    async def who_am_i(user: Caller) -> JsonBody:
        """The user the API key belongs to."""
        return JsonBody(user_v1(await api.group_config().users.get(user.id, user=user)))

    @router.get("/{target}", response_model=UserV1, operation_id="user-get")
    async def get_user(target: UserParam, user: Caller) -> JsonBody:
        return JsonBody(user_v1(await api.group_config().users.get(user_key(target), user=user)))

    @router.patch("/{target}", response_model=UserV1, operation_id="user-role-update")
    async def set_role(target: UserParam, body: UserRoleV1, user: Caller) -> JsonBody:
        changed = await api.group_config().users.set_role(user_key(target), body.role, user=user)
        return JsonBody(user_v1(changed))

    @router.delete(
        "/{target}", status_code=204, response_class=Response, operation_id="user-delete"
    )
    async def delete_user(target: UserParam, user: Caller) -> Response:
        """Remove the user, their memberships and their API keys."""
        await api.group_config().users.purge(user_key(target), user=user)
        return Response(status_code=204)

    return router
