"""Group bodies."""

from __future__ import annotations

import datetime as dt
import uuid

from jaseci_like_services.api.dto.v1.common import Line, PageV1, Request
from pydantic import BaseModel, Field


class GroupV1(BaseModel):
    id: uuid.UUID
    domain: str
    name: str
    created_at: dt.datetime


class GroupListV1(PageV1):
    items: list[GroupV1]


class GroupCreateV1(Request):
    """``PUT /v1/groups``: a group in ``domain`` (default: the caller's)."""

    name: Line = Field(min_length=1, max_length=64)
    domain: Line | None = Field(default=None, min_length=1, max_length=64)


class GroupRenameV1(Request):
    name: Line = Field(min_length=1, max_length=64)
