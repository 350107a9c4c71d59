"""What the route modules share: parameter types and the documented error answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.responses import Response
from jaseci_like_services.api.dto.v1.common import NO_CONTROL, ErrorV1
from pydantic import BaseModel

_DESCRIPTIONS = {
    400: "A limit of the group, or a page or cursor that cannot be used.",
    401: "No API key, an unknown one, or a revoked one.",
    403: "The caller may not do this.",
    404: "The group, dotfile, user or task does not exist (or is not the caller's).",
    409: "It exists already.",
    413: "The request body is too large.",
    422: "The request is not valid (an unknown field included).",
    503: "A service or the database is not available; retry later.",
}
#: What every authenticated route may answer besides its success.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorV1, "description": text} for status, text in _DESCRIPTIONS.items()
}

GroupParam = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=NO_CONTROL,
        description="The group's UUID, or its name (in `domain`; default: the caller's).",
    ),
]
UserParam = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=NO_CONTROL,
        description="The user's UUID or email.",
    ),
]
DomainQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=NO_CONTROL,
        description="Domain of a group named by name (default: the caller's).",
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=1000)]
OffsetQuery = Annotated[int, Query(ge=0, le=1_000_000)]


class JsonBody(Response):
    """A pydantic body serialized once, by pydantic, with no second validation."""

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(model.__pydantic_serializer__.to_json(model), status_code)
