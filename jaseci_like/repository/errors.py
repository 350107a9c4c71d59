"""Database errors turned into domain errors, and transient ones told apart.

A constraint violation is the caller's problem (a duplicate, a missing
reference) and maps to a typed error with a stable code and HTTP status; a
transient failure (lock, lost connection, serialization) is worth a retry.
Both SQLite (aiosqlite) and PostgreSQL (asyncpg) are understood.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.exc import DBAPIError, IntegrityError

from jaseci_like.errors import JaseciLikeError

#: SQLSTATEs worth a retry: serialization failure, deadlock, lock timeout,
#: server shutting down or terminating the backend, too many connections.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
_SQLITE_TRANSIENT_NAMES = ("SQLITE_BUSY", "SQLITE_LOCKED")
_SQLITE_TRANSIENT_TEXT = ("database is locked", "database table is locked", "connection closed")


class RepositoryError(JaseciLikeError):
    """Base of the errors the repository layer raises on purpose."""

    code: ClassVar[str] = "repository_error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1


class AlreadyExists(RepositoryError):
    """A row with the same unique key exists (a unique constraint was violated)."""

    code = "already_exists"
    http_status = 409
    exit_code = 9


class ReferenceNotFound(RepositoryError):
    """A row refers to one that does not exist (a foreign key was violated)."""

    code = "reference_not_found"
    http_status = 404
    exit_code = 8


class StillReferenced(RepositoryError):
    """A row cannot be removed while others refer to it."""

    code = "still_referenced"
    http_status = 409
    exit_code = 9


class ConstraintViolation(RepositoryError):
    """A value the schema refuses (NOT NULL or CHECK constraint)."""

    code = "constraint_violation"
    http_status = 422
    exit_code = 10


class DatabaseUnavailable(RepositoryError):
    """The database did not answer, or kept failing with transient errors through
    every retry; the operation changed nothing. Retrying later may succeed.

    ``retry_after``: seconds a caller may wait before trying again.
    """

    code = "database_unavailable"
    http_status = 503
    exit_code = 7
    retriable: ClassVar[bool] = True
    #: Whether the change was applied: False here, None when nobody can tell.
    committed: ClassVar[bool | None] = False

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CommitOutcomeUnknown(DatabaseUnavailable):
    """The connection was lost while the transaction committed: the change may or may
    not have been applied. It is not retried blindly (a create would then fail as a
    duplicate, or a change be applied twice); read the state back first."""

    code = "commit_outcome_unknown"
    committed = None


class InvalidQuery(RepositoryError):
    """A pagination, cursor, ordering or scope the query cannot use."""

    code = "invalid_query"
    http_status = 400
    exit_code = 10


def _sqlstate(orig: Any) -> str | None:
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def constraint_kind(exc: IntegrityError) -> str:
    """``unique``, ``foreign_key``, ``not_null``, ``check`` or ``other``."""
    orig = exc.orig
    state = _sqlstate(orig)
    if state is not None:
        return {"23505": "unique", "23503": "foreign_key", "23502": "not_null"}.get(
            state, "check" if state == "23514" else "other"
        )
    name = str(getattr(orig, "sqlite_errorname", ""))
    text = str(orig)
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY") or "UNIQUE" in text:
        return "unique"
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY" or "FOREIGN KEY" in text:
        return "foreign_key"
    if name == "SQLITE_CONSTRAINT_NOTNULL" or "NOT NULL" in text:
        return "not_null"
    if name == "SQLITE_CONSTRAINT_CHECK" or "CHECK" in text:
        return "check"
    return "other"


def translate_integrity_error(
    exc: IntegrityError, what: str = "row", deleting: bool = False
) -> RepositoryError:
    """The domain error for a constraint violation (the driver's text stays in ``__cause__``).

    A foreign key violated by a DELETE means the row is still referenced; by an
    INSERT or UPDATE, that the row refers to something missing.
    """
    kind = constraint_kind(exc)
    if kind == "unique":
        return AlreadyExists(f"{what} already exists")
    if kind == "foreign_key" and deleting:
        return StillReferenced(f"{what} is still referenced; remove what refers to it first")
    if kind == "foreign_key":
        return ReferenceNotFound(f"{what} refers to something that does not exist")
    return ConstraintViolation(f"{what} violates a {kind.replace('_', ' ')} constraint")


def is_transient(exc: BaseException) -> bool:
    """Whether running the same transaction again may succeed.

    True for a lost or refused connection, a serialization failure or deadlock, a
    lock timeout, and SQLite's "database is locked"; never for a domain error.
    """
    if isinstance(exc, OSError):
        # Refused, reset or timed out (ConnectionError, TimeoutError), and asyncpg's
        # plain OSError("Multiple exceptions: ...") when every address refused.
        return True
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = _sqlstate(orig)
    if state is not None:
        return state in TRANSIENT_SQLSTATES or state.startswith("08")
    name = str(getattr(orig, "sqlite_errorname", ""))
    if name.startswith(_SQLITE_TRANSIENT_NAMES):
        return True
    text = str(orig).lower()
    return any(marker in text for marker in _SQLITE_TRANSIENT_TEXT) or (
        "connection" in text and "closed" in text
    )


#: SQLSTATEs of a server that ended the session: shutting down, terminating backends.
_SESSION_ENDED_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def is_connection_lost(exc: BaseException) -> bool:
    """Whether the connection to the database broke (refused, reset, closed by the
    server): the transaction it carried was not finished by this client."""
    if isinstance(exc, OSError):  # ConnectionError and socket errors included
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc.orig)
    return state is not None and (state.startswith("08") or state in _SESSION_ENDED_SQLSTATES)
