"""User bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from jaseci_like_services.api.dto.v1.common import Line, PageV1, Request
from pydantic import BaseModel, Field

RoleV1 = Literal["superadmin", "admin", "user"]


class UserV1(BaseModel):
    id: uuid.UUID
    email: str
    role: RoleV1
    domain: str
    created_at: dt.datetime


class UserListV1(PageV1):
    items: list[UserV1]


class UserCreateV1(Request):
    """``PUT /v1/users``: a user in ``domain`` (default: the caller's)."""

    email: Line = Field(min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")
    role: RoleV1 = "user"
    domain: Line | None = Field(default=None, min_length=1, max_length=64)


class UserRoleV1(Request):
    """``PATCH /v1/users/{user}``: the user's new role."""

    role: RoleV1
