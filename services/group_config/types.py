"""Value types of the group-config service: who acts, what is named, what comes back."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Protocol

from jaseci_like_services.group_config.errors import (
    DotfileLimitExceeded,
    DotfileSpaceExceeded,
    InvalidInput,
)

from jaseci_like.repository import UNSET, Page, ReadOps, Unset


class Role(enum.StrEnum):
    SUPERADMIN = "superadmin"
    ADMIN = "admin"
    USER = "user"


class DotfileStatus(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class DotfileOrder(enum.StrEnum):
    """``created``: oldest first (stable under inserts); ``path``: by path."""

    CREATED = "created"
    PATH = "path"


@dataclass(frozen=True)
class CurrentUser:
    """Who is acting, as the caller authenticated them (role and domain are trusted)."""

    id: uuid.UUID
    role: Role
    domain: str

    @classmethod
    def system(cls, domain: str) -> CurrentUser:
        """The local operator (the command line without ``--as``): a superadmin."""
        return cls(uuid.UUID(int=0), Role.SUPERADMIN, domain)


class Credential(Protocol):
    """What else a submitter's authority rests on (the API key they used), checked
    again inside the transaction that acts for them."""

    async def verify(self, ops: ReadOps, user: CurrentUser) -> None:
        """Raise a typed error unless ``user`` may still act through this credential.

        ``ops`` is the operation's own transaction: read with ``ops.execute`` only.
        """


@dataclass(frozen=True)
class Submitter:
    """Who asked for work that runs later (a queued task), to be judged as they are
    when it runs: each operation re-reads the user (role, memberships) and checks
    ``credential`` in its own transaction, so a demotion, a removal, a revoked key or
    a deleted user stops the work at its next transaction.

    ``domain`` only completes group names given without one (a user's domain never
    changes); nothing is trusted from it.
    """

    id: uuid.UUID
    domain: str
    credential: Credential | None = None


#: Who an operation acts for: a user the caller has just authenticated, or a
#: submitter to re-read in the operation's transaction.
Actor = CurrentUser | Submitter


@dataclass(frozen=True)
class GroupRef:
    """A group by UUID, or by name within a domain (None: the acting user's domain).

    >>> GroupRef.parse("research", "acme")
    GroupRef(id=None, name='research', domain='acme')
    """

    id: uuid.UUID | None = None
    name: str | None = None
    domain: str | None = None

    def __post_init__(self) -> None:
        if (self.id is None) == (self.name is None):
            raise InvalidInput("name a group by its id or by its name, not both or neither")

    @classmethod
    def parse(cls, value: GroupRef | uuid.UUID | str, domain: str | None = None) -> GroupRef:
        """A ref from a UUID, a UUID string, or a name (a ref is returned as it is)."""
        if isinstance(value, GroupRef):
            return value
        if isinstance(value, uuid.UUID):
            return cls(id=value, domain=domain)
        try:
            return cls(id=uuid.UUID(value), domain=domain)
        except ValueError:
            if not value:
                raise InvalidInput("a group name must not be empty") from None
            return cls(name=value, domain=domain)

    def within(self, domain: str) -> GroupRef:
        """A name ref with ``domain`` filled in when it has none (an id needs no domain)."""
        if self.id is not None or self.domain is not None:
            return self
        return GroupRef(name=self.name, domain=domain)

    def __str__(self) -> str:
        where = f" in domain {self.domain!r}" if self.domain else ""
        return f"{self.id}{where}" if self.id is not None else f"{self.name!r}{where}"


@dataclass(frozen=True)
class Domain:
    name: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Group:
    id: uuid.UUID
    domain: str
    name: str
    created_at: dt.datetime


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    role: Role
    domain: str
    created_at: dt.datetime

    def identity(self) -> CurrentUser:
        return CurrentUser(self.id, self.role, self.domain)


@dataclass(frozen=True)
class GroupAccess:
    """A resolved group, and whether the acting user is a member (if that was asked)."""

    group: Group
    is_member: bool


class Guard(Protocol):
    """The service's decision, run by the db source right after the group is resolved.

    A guard for a :class:`Submitter` is first turned into one for the user as the
    transaction reads them (``judging``); ``member_id`` and ``check`` come after.
    """

    @property
    def submitter(self) -> Submitter | None:
        """Whom to re-read before judging (None: the actor is a current user)."""

    def judging(self, user: CurrentUser) -> Guard:
        """This guard for ``user``, the submitter as the transaction reads them."""

    @property
    def member_id(self) -> uuid.UUID | None:
        """The user whose membership the check needs (None: not needed)."""

    def check(self, access: GroupAccess) -> None:
        """Raise Forbidden unless the access is allowed."""


@dataclass(frozen=True)
class Dotfile:
    id: int
    group_id: uuid.UUID
    path: str
    permission: str
    data: str
    status: DotfileStatus
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class DotfileSpec:
    """A dotfile to create (or upsert)."""

    path: str
    data: str
    permission: str = "644"


@dataclass(frozen=True)
class DotfileChanges:
    """What an update changes; a field left UNSET keeps its value."""

    data: str | Unset = UNSET
    permission: str | Unset = UNSET


@dataclass(frozen=True)
class DotfileFilter:
    """Narrows a listing (``path_prefix`` is matched literally, not as a pattern)."""

    path_prefix: str | None = None


@dataclass(frozen=True)
class Limits:
    """How much one group may hold: active dotfiles, and UTF-8 bytes of paths + data."""

    max_dotfiles: int = 100
    max_bytes: int = 65_536

    def check(self, count: int, size: int, before: Usage) -> None:
        """Raise the limit error if a group would hold ``count`` dotfiles of ``size`` bytes."""
        if count > self.max_dotfiles and count > before.count:
            raise DotfileLimitExceeded(
                f"the group has {before.count} dotfiles, the most it may have is "
                f"{self.max_dotfiles}; delete one first",
                before.leftover_space,
            )
        if size > self.max_bytes and size > before.bytes:
            raise DotfileSpaceExceeded(
                f"this needs {size - before.bytes} more bytes, but only "
                f"{before.leftover_space} of {self.max_bytes} are left in the group",
                before.leftover_space,
            )


@dataclass(frozen=True)
class Usage:
    """What a group's active dotfiles hold, against its limits."""

    count: int
    bytes: int
    max_dotfiles: int
    max_bytes: int

    @property
    def leftover_space(self) -> int:
        return max(0, self.max_bytes - self.bytes)

    @property
    def leftover_count(self) -> int:
        return max(0, self.max_dotfiles - self.count)


@dataclass(frozen=True)
class DotfileResult:
    """A dotfile written, and the group's usage after the write."""

    dotfile: Dotfile
    usage: Usage

    @property
    def leftover_space(self) -> int:
        return self.usage.leftover_space


@dataclass(frozen=True)
class DotfileList:
    """One page of a group's dotfiles, and the group's usage."""

    page: Page[Dotfile]
    usage: Usage

    @property
    def leftover_space(self) -> int:
        return self.usage.leftover_space
