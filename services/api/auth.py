"""``Authorization: Bearer <key>`` to the user the key belongs to (a FastAPI dependency).

The API decides only *who* calls; what they may do is group_config's rule,
judged by the service each route calls with ``user=`` this user. The dashboard's
session cookie (see sessions.py) stands for the key it signed in with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.security import HTTPBearer
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

    async def caller(request: Request) -> CurrentUser:
        token = bearer_token(request)
        if token is None and sessions is not None:
            session = sessions.of(request)
            if session is not None:
                check_write(request, session)
                return await api.keys.authenticate(session.token)
        return await api.keys.authenticate(token)

    return caller


def bearer_token(request: Request) -> str | None:
    """The key of ``Authorization: Bearer <key>``, read as ``HTTPBearer`` reads it."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def document_keys(app: FastAPI) -> None:
    """Write ``bearer`` (the ``ApiKey`` scheme) into ``app``'s OpenAPI document, on every
    operation that may answer 401: those are the ones whose handler takes the caller.
    The caller reads the header itself; a ``Depends(bearer)`` would cost a dependency
    solved on every request only to be described here."""
    scheme = bearer.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    document = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = document()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[
            bearer.scheme_name
        ] = scheme
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if "401" in operation.get("responses", {}):
                    operation["security"] = [{bearer.scheme_name: []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
