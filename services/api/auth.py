"""``Authorization: Bearer <key>`` to the user the key belongs to (a FastAPI dependency).

The API decides only *who* calls; what they may do is group_config's rule,
judged by the service each route calls with ``user=`` this user. The dashboard's
session cookie (see sessions.py) stands for the key it signed in with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jaseci_like_services.api.sessions import UiSessions, check_write
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.group_config.types import CurrentUser

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`jlk_...`) from `jaseci-like users create` or "
    "`jaseci-like api-keys create`.",
)


def authenticator(
    api: ApiState, sessions: UiSessions | None = None
) -> Callable[..., Awaitable[CurrentUser]]:
    """The dependency that answers the caller's identity, or 401. Without a bearer
    key, a dashboard session cookie (``sessions``) is taken, its writes CSRF-checked."""

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> CurrentUser:
        if credentials is None and sessions is not None:
            session = sessions.of(request)
            if session is not None:
                check_write(request, session)
                return await api.keys.authenticate(session.token)
        return await api.keys.authenticate(credentials.credentials if credentials else None)

    return caller
