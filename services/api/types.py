"""Value types of the api service's own data: API keys and task owners."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from jaseci_like_services.group_config.types import CurrentUser


def user_key(value: str) -> uuid.UUID | str:
    """A user named by UUID or by email, as group_config takes it."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class KeyHolder(CurrentUser):
    """A user as an API key authenticated them: the key goes with them, so work they
    queue can check, when it runs, that this key still holds (``KeyInUse``)."""

    key_id: str


@dataclass(frozen=True)
class ApiKeyInfo:
    """What is known of a key besides its secret (which is never kept)."""

    id: str
    user_id: uuid.UUID
    label: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``token`` is shown to its owner once and stored nowhere."""

    info: ApiKeyInfo
    token: str


@dataclass(frozen=True)
class KeyRecord:
    """A stored key as authentication reads it: its hash, state and owner."""

    key_hash: str
    revoked: bool
    user: KeyHolder


@dataclass(frozen=True)
class KeyOwner:
    """A stored key and the domain of its owner, for deciding who may revoke it."""

    info: ApiKeyInfo
    domain: str


@dataclass(frozen=True)
class TaskOwnerRow:
    """A submitted task as the api service recorded it (its status is the task service's)."""

    task_id: str
    user_id: uuid.UUID
    name: str
    created_at: dt.datetime
