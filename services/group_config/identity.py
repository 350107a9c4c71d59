"""The current user: set by the caller (an API request, a command) for what it calls.

>>> import uuid
>>> admin = CurrentUser(uuid.uuid4(), Role.ADMIN, "acme")
>>> with acting_as(admin):
...     current_user.get() is admin
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import overload

from jaseci_like_services.group_config.errors import NoCurrentUser
from jaseci_like_services.group_config.types import Actor, CurrentUser, Role, Submitter

__all__ = ["CurrentUser", "Role", "acting_as", "current_user", "resolve_user"]

current_user: ContextVar[CurrentUser | None] = ContextVar(
    "jaseci_like_group_config_current_user", default=None
)


@contextmanager
def acting_as(user: CurrentUser) -> Iterator[CurrentUser]:
    """``user`` is the current user inside the block (and in tasks it starts)."""
    token = current_user.set(user)
    try:
        yield user
    finally:
        current_user.reset(token)


@overload
def resolve_user(explicit: CurrentUser | None) -> CurrentUser: ...
@overload
def resolve_user(explicit: Submitter) -> Submitter: ...
@overload
def resolve_user(explicit: Actor | None) -> Actor: ...
def resolve_user(explicit: Actor | None) -> Actor:
    """The user passed explicitly, else the current one; NoCurrentUser when neither.

    A :class:`Submitter` passes as it is: only operations that judge one in their
    transaction (a group's dotfiles) take it.
    """
    user = explicit if explicit is not None else current_user.get()
    if user is None:
        raise NoCurrentUser(
            "no current user: call inside acting_as(user) or pass user=... explicitly"
        )
    return user
