"""Bodies of the dashboard's sign-in (``/ui/session``)."""

from __future__ import annotations

import uuid

from jaseci_like_services.api.dto.v1.common import Request
from jaseci_like_services.api.dto.v1.users import RoleV1
from pydantic import BaseModel, Field


class SignInV1(Request):
    #: An API key (``jlk_...``); it stays on the server, the browser gets a session.
    key: str = Field(min_length=1, max_length=200)


class SessionV1(BaseModel):
    user_id: uuid.UUID
    role: RoleV1
    domain: str
    #: Sent back in ``X-CSRF-Token`` with every change made through the session.
    csrf_token: str
