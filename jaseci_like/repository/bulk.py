"""Per-row work with partial failures: each item in its own SAVEPOINT.

A domain error (a duplicate, a limit, a bad value) fails that item only and is
returned with its index; anything else (a lost connection, a lock) aborts the
whole call, so the caller's retry policy can run it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from jaseci_like.errors import JaseciLikeError
from jaseci_like.repository.errors import translate_integrity_error

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741


@dataclass(frozen=True)
class BulkFailure:
    """Item ``index`` of the input was not applied, because of ``error``."""

    index: int
    error: JaseciLikeError


@dataclass(frozen=True)
class BulkResult(Generic[T]):
    """What a bulk call did: ``(index, result)`` per success, a failure per refused item."""

    succeeded: tuple[tuple[int, T], ...]
    failures: tuple[BulkFailure, ...]

    @property
    def results(self) -> list[T]:
        return [result for _, result in self.succeeded]


async def run_partial(
    conn: AsyncConnection,
    items: Sequence[I],
    action: Callable[[int, I], Awaitable[T]],
) -> BulkResult[T]:
    """``action(index, item)`` for every item, each inside a savepoint of ``conn``."""
    succeeded: list[tuple[int, T]] = []
    failures: list[BulkFailure] = []
    for index, item in enumerate(items):
        try:
            async with conn.begin_nested():
                succeeded.append((index, await action(index, item)))
        except IntegrityError as exc:
            failures.append(BulkFailure(index, translate_integrity_error(exc)))
        except JaseciLikeError as exc:
            failures.append(BulkFailure(index, exc))
    return BulkResult(tuple(succeeded), tuple(failures))
