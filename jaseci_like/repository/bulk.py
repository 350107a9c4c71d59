"""Per-row work with partial failures: each item in its own SAVEPOINT.

A domain error (a duplicate, a limit) or a database error about the item's values
(a violated constraint, a value too long or out of range, on SQLite and PostgreSQL
alike) fails that item only: it is rolled back to its savepoint and returned with
its index and a typed reason, the driver's text never. Anything else (a lost
connection, a lock, a serialization failure, a broken statement) aborts the whole
call, so the caller's retry policy can run it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from jaseci_like.errors import JaseciLikeError
from jaseci_like.repository.errors import (
    DatabaseUnavailable,
    FailureReason,
    RepositoryError,
    translate_row_error,
)

T = TypeVar("T")
U = TypeVar("U")
I = TypeVar("I")  # noqa: E741


@dataclass(frozen=True)
class BulkFailure:
    """Item ``index`` of the input was not applied, because of ``error``.

    ``reason`` types the failure (``unique``, ``not_null``, ``data``...; ``refused``
    for a domain error raised on purpose), ``code`` and ``message`` are the error's
    own: a stable code and a short text that names no value.
    """

    index: int
    error: JaseciLikeError

    @property
    def reason(self) -> FailureReason:
        if isinstance(self.error, RepositoryError):
            return self.error.reason
        return FailureReason.REFUSED

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def message(self) -> str:
        return self.error.message


@dataclass(frozen=True)
class BulkResult(Generic[T]):
    """What a bulk call did: ``(index, result)`` per success, a failure per refused item."""

    succeeded: tuple[tuple[int, T], ...]
    failures: tuple[BulkFailure, ...]

    @property
    def results(self) -> list[T]:
        return [result for _, result in self.succeeded]

    def map(self, func: Callable[[T], U]) -> BulkResult[U]:
        """The same result with ``func`` applied to each success (rows to data types)."""
        return BulkResult(tuple((i, func(r)) for i, r in self.succeeded), self.failures)


async def run_partial(
    conn: AsyncConnection,
    items: Sequence[I],
    action: Callable[[int, I], Awaitable[T]],
) -> BulkResult[T]:
    """``action(index, item)`` for every item, each inside a savepoint of ``conn``.

    A domain error, or a database error about the item's values (see
    :func:`translate_row_error`), fails the item; any other error propagates.
    """
    succeeded: list[tuple[int, T]] = []
    failures: list[BulkFailure] = []
    for index, item in enumerate(items):
        try:
            async with conn.begin_nested():
                succeeded.append((index, await action(index, item)))
        except DatabaseUnavailable:
            raise  # the database, not this item: the whole call may be retried
        except JaseciLikeError as exc:
            failures.append(BulkFailure(index, _detached(exc)))
        except StatementError as exc:  # DBAPIError included
            error = translate_row_error(exc)
            if error is None:
                raise
            failures.append(BulkFailure(index, error))
    return BulkResult(tuple(succeeded), tuple(failures))


def _detached(error: JaseciLikeError) -> JaseciLikeError:
    """``error`` kept as a result, not raised: without its frames, and a repository
    error without the driver's error it was translated from (whose text holds the
    row's values)."""
    error.__traceback__ = None
    if isinstance(error, RepositoryError):
        error.__cause__ = error.__context__ = None
    return error
