"""Database errors turned into domain errors, and transient ones told apart.

A constraint violation is the caller's problem (a duplicate, a missing
reference) and maps to a typed error with a stable code and HTTP status; a
transient failure (lock, lost connection, serialization) is worth a retry.
Both SQLite (aiosqlite) and PostgreSQL (asyncpg) are understood.
"""

from __future__ import annotations

import enum
import re
from typing import Any, ClassVar

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from jaseci_like.errors import JaseciLikeError

#: SQLSTATEs worth a retry: serialization failure, deadlock, lock timeout,
#: server shutting down or terminating the backend, too many connections.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
_SQLITE_TRANSIENT_NAMES = ("SQLITE_BUSY", "SQLITE_LOCKED")
_SQLITE_TRANSIENT_TEXT = ("database is locked", "database table is locked", "connection closed")


class FailureReason(enum.StrEnum):
    """Why one row of a bulk call was not applied: a stable, typed code.

    ``unique``, ``foreign_key``, ``not_null``, ``check`` and ``integrity`` (another
    constraint) name the constraint the row violated; ``data``: a value its column
    cannot hold (too long, out of range, not of the column's type, a character the
    database cannot store); ``refused``: a domain error raised on purpose (a limit, a
    validation), see the error's own ``code``.
    """

    UNIQUE = "unique"
    FOREIGN_KEY = "foreign_key"
    NOT_NULL = "not_null"
    CHECK = "check"
    INTEGRITY = "integrity"
    DATA = "data"
    REFUSED = "refused"


class RepositoryError(JaseciLikeError):
    """Base of the errors the repository layer raises on purpose."""

    code: ClassVar[str] = "repository_error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    #: What this error says about a row that a bulk call could not apply.
    reason: ClassVar[FailureReason] = FailureReason.REFUSED


class AlreadyExists(RepositoryError):
    """A row with the same unique key exists (a unique constraint was violated)."""

    code = "already_exists"
    http_status = 409
    exit_code = 9
    reason = FailureReason.UNIQUE


class ReferenceNotFound(RepositoryError):
    """A row refers to one that does not exist (a foreign key was violated)."""

    code = "reference_not_found"
    http_status = 404
    exit_code = 8
    reason = FailureReason.FOREIGN_KEY


class StillReferenced(RepositoryError):
    """A row cannot be removed while others refer to it."""

    code = "still_referenced"
    http_status = 409
    exit_code = 9
    reason = FailureReason.FOREIGN_KEY


class ConstraintViolation(RepositoryError):
    """A value the schema refuses (NOT NULL or CHECK constraint, or another one)."""

    code = "constraint_violation"
    http_status = 422
    exit_code = 10
    reason = FailureReason.INTEGRITY


class NotNullViolation(ConstraintViolation):
    """A column that must have a value was given none (NULL)."""

    reason = FailureReason.NOT_NULL


class CheckViolation(ConstraintViolation):
    """A value a CHECK constraint refuses."""

    reason = FailureReason.CHECK


class InvalidValue(ConstraintViolation):
    """A value its column cannot hold: too long, out of range, not of the column's type,
    or with a character the database cannot store (the database's "data exception")."""

    code = "invalid_value"
    reason = FailureReason.DATA


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


class WriteQueueStalled(Exception):
    """A writer waited its turn in the process's write queue (see
    ``jaseci_like.repository.write_queue``) for the lock timeout while one other
    writer kept it: transient, like the database's own "locked"."""


class InvalidQuery(RepositoryError):
    """A pagination, cursor, ordering or scope the query cannot use."""

    code = "invalid_query"
    http_status = 400
    exit_code = 10


class EmptySearchScope(InvalidQuery):
    """A scoped query was given no scope at all: run as it is, it would read the rows of
    every tenant. A global read is asked for by name (``batch_query_in_global``)."""

    code = "empty_search_scope"


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


def _sqlite_name(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlite_errorname", ""))


#: What a message may name of the schema: an identifier, maybe qualified, maybe a list.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*(, [A-Za-z_][A-Za-z0-9_$.]*)*")


def _culprit(exc: DBAPIError) -> str:
    """`` (name)``: the column or constraint the database blamed, when it said which
    (never a value); empty otherwise."""
    orig = exc.orig
    driver = getattr(orig, "__cause__", None)  # asyncpg's own error, behind the adapter
    name = getattr(driver, "column_name", None) or getattr(driver, "constraint_name", None)
    if name is None:
        _, marker, rest = str(orig).partition("constraint failed: ")  # SQLite
        name = rest.strip() if marker else None
    if isinstance(name, str) and len(name) <= 120 and _NAME.fullmatch(name):
        return f" ({name})"
    return ""


def translate_integrity_error(
    exc: IntegrityError, what: str = "row", deleting: bool = False
) -> RepositoryError:
    """The domain error for a constraint violation (the driver's text stays in ``__cause__``).

    A foreign key violated by a DELETE means the row is still referenced; by an
    INSERT or UPDATE, that the row refers to something missing. SQLite reports a value
    of the wrong type for a rowid or STRICT column as a constraint: :class:`InvalidValue`.
    """
    kind = constraint_kind(exc)
    if kind == "unique":
        return AlreadyExists(f"{what} already exists")
    if kind == "foreign_key" and deleting:
        return StillReferenced(f"{what} is still referenced; remove what refers to it first")
    if kind == "foreign_key":
        return ReferenceNotFound(f"{what} refers to something that does not exist")
    if kind == "not_null":
        return NotNullViolation(f"{what} violates a not null constraint{_culprit(exc)}")
    if kind == "check":
        return CheckViolation(f"{what} violates a check constraint{_culprit(exc)}")
    if _sqlite_name(exc).startswith(("SQLITE_MISMATCH", "SQLITE_CONSTRAINT_DATATYPE")):
        return InvalidValue(f"{what}: {_NOT_OF_TYPE}")
    return ConstraintViolation(f"{what} violates a {kind.replace('_', ' ')} constraint")


_NOT_OF_TYPE = "a value is not of its column's type"
_OUT_OF_RANGE = "a number is out of range for its column"
_BAD_CHARACTER = "a text value holds a character the database cannot store"
#: PostgreSQL "data exception" SQLSTATEs (class 22) -> what to say, without the value.
_DATA_PHRASES = {
    "22001": "a value is too long for its column",
    "22003": _OUT_OF_RANGE,
    "22007": "a date or time value is not valid",
    "22008": "a date or time value is out of range",
    "22021": _BAD_CHARACTER,
    "22P05": _BAD_CHARACTER,
    "22P02": _NOT_OF_TYPE,
}


def _data_phrase(exc: DBAPIError, state: str | None) -> str:
    if state is not None and state in _DATA_PHRASES:
        return _DATA_PHRASES[state]
    if state == "22000" and "range" in str(exc.orig):
        return _OUT_OF_RANGE  # asyncpg refusing to encode a parameter: "out of int32 range"
    if state == "54000":
        return "a value is too large for the database to store or index"
    if _sqlite_name(exc) == "SQLITE_TOOBIG":
        return "a value is too large for the database"
    return "a value does not fit its column"


def translate_row_error(exc: BaseException, what: str = "row") -> RepositoryError | None:
    """The domain error for a failure caused by the values of the row a statement
    wrote, or None when ``exc`` is about something else (a lost connection, a lock, a
    bug in the statement), which must not be mistaken for a refused row.

    Row failures: a violated constraint (see :func:`translate_integrity_error`), a
    value the database cannot hold (PostgreSQL's data exceptions, SQLSTATE class 22,
    and a value too large to index, 54000; SQLite's "too big"), and a parameter the
    driver could not bind (a number out of SQLite's 64-bit range, text that is not
    valid Unicode, a value a column type refused). The message names no value.
    """
    if is_transient(exc) or is_connection_lost(exc):
        return None
    if isinstance(exc, IntegrityError):
        return translate_integrity_error(exc, what)
    if isinstance(exc, DBAPIError):
        state = _sqlstate(exc.orig)
        row_state = state is not None and (state.startswith("22") or state == "54000")
        if row_state or (state is None and isinstance(exc, DataError)):
            return InvalidValue(f"{what}: {_data_phrase(exc, state)}")
        if state is None and str(exc.orig).startswith("Error binding parameter"):
            return InvalidValue(f"{what}: {_NOT_OF_TYPE}")  # sqlite3: a type it cannot store
        return None
    if isinstance(exc, StatementError):
        # Raised before the statement was sent: a bind processor refused a value.
        if isinstance(exc.orig, (ValueError, TypeError, OverflowError)):
            return InvalidValue(f"{what}: {_NOT_OF_TYPE}")
        return None
    if isinstance(exc, OverflowError):  # sqlite3 binding an int beyond 64 bits
        return InvalidValue(f"{what}: {_OUT_OF_RANGE}")
    if isinstance(exc, UnicodeEncodeError):  # sqlite3 binding a lone surrogate
        return InvalidValue(f"{what}: {_BAD_CHARACTER}")
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether running the same transaction again may succeed.

    True for a lost or refused connection, a serialization failure or deadlock, a
    lock timeout, and SQLite's "database is locked"; never for a domain error.
    """
    if isinstance(exc, (OSError, WriteQueueStalled)):
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
