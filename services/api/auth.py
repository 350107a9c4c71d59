"""``Authorization: Bearer <key>`` to the user the key belongs to (a FastAPI dependency).

The API decides only *who* calls; what they may do is group_config's rule,
judged by the service each route calls with ``user=`` this user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.group_config.types import CurrentUser

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`jlk_...`) from `jaseci-like users create` or "
    "`jaseci-like api-keys create`.",
)


def authenticator(api: ApiState) -> Callable[..., Awaitable[CurrentUser]]:
    """The dependency that answers the caller's identity, or 401."""

    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> CurrentUser:
        return await api.keys.authenticate(credentials.credentials if credentials else None)

    return caller
