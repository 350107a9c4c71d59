"""Pages of rows: offset pagination, cursor (keyset) pagination, and ``Page``.

Offset pages are easy to jump between; cursor pages stay exact while rows are
inserted, because each page starts after the last key seen instead of after a
count of rows. A cursor is an opaque token bound to the ordering it came from.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, or_

from jaseci_like.repository.errors import InvalidQuery

T = TypeVar("T")
U = TypeVar("U")

#: Most rows one page may hold.
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Order:
    """One ordering key; a cursor needs the last key of the list to be unique."""

    column: ColumnElement[Any]
    descending: bool = False

    def clause(self, reverse: bool = False) -> ColumnElement[Any]:
        return self.column.asc() if self.descending == reverse else self.column.desc()


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQuery(f"page size {limit}: must be between 1 and {MAX_PAGE_SIZE}")


#: Largest offset a query may skip (a signed 64-bit integer in SQL).
MAX_OFFSET = (1 << 63) - 1


@dataclass(frozen=True)
class OffsetPagination:
    """``limit`` rows after skipping ``offset``."""

    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        _check_limit(self.limit)
        if self.offset < 0:
            raise InvalidQuery(f"offset {self.offset}: must not be negative")
        if self.offset > MAX_OFFSET:  # the databases take a 64-bit integer at most
            raise InvalidQuery(f"offset {self.offset}: at most {MAX_OFFSET}")


@dataclass(frozen=True)
class CursorPagination:
    """``limit`` rows after the cursor ``after`` (forward), or before ``before`` (backward)."""

    limit: int = 50
    after: str | None = None
    before: str | None = None

    def __post_init__(self) -> None:
        _check_limit(self.limit)
        if self.after is not None and self.before is not None:
            raise InvalidQuery("give a cursor to page after, or one to page before, not both")

    @property
    def backward(self) -> bool:
        return self.before is not None


Pagination = OffsetPagination | CursorPagination


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results; cursors are set for cursor pagination only."""

    items: tuple[T, ...]
    total_count: int | None
    has_next: bool
    has_previous: bool
    next_cursor: str | None = None
    previous_cursor: str | None = None

    def map(self, func: Callable[[T], U]) -> Page[U]:
        """The same page with every item converted (rows to data classes)."""
        return Page(
            tuple(func(item) for item in self.items),
            self.total_count,
            self.has_next,
            self.has_previous,
            self.next_cursor,
            self.previous_cursor,
        )


# -- cursor tokens -----------------------------------------------------------------------------


def _fingerprint(orders: Sequence[Order]) -> str:
    names = ",".join(f"{o.column}{'-' if o.descending else '+'}" for o in orders)
    return hashlib.blake2s(names.encode(), digest_size=4).hexdigest()


def _encode_value(value: Any) -> list[Any]:
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, dt.datetime):
        return ["t", value.isoformat()]
    if value is None or isinstance(value, bool | int | float | str):
        return ["j", value]
    raise InvalidQuery(f"cannot put a {type(value).__name__} into a cursor")


def _decode_value(item: Any) -> Any:
    if not isinstance(item, list) or len(item) != 2:
        raise ValueError("not a tagged value")
    tag, value = item
    if tag == "u" and isinstance(value, str):
        return uuid.UUID(value)
    if tag == "t" and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if tag == "j" and (value is None or isinstance(value, bool | int | float | str)):
        return value
    raise ValueError(tag)


#: Longest token :func:`decode_cursor` reads; the ones it issues are far shorter.
MAX_CURSOR_CHARS = 4096
#: Integers the databases take (signed 64-bit).
_INT_RANGE = range(-(1 << 63), 1 << 63)


def _expected_type(order: Order) -> type | None:
    try:
        python_type: type = order.column.type.python_type
    except NotImplementedError:  # a type that does not say: the database will judge
        return None
    return python_type


def _fits(order: Order, value: Any) -> bool:
    """Whether ``value`` is a key the ordering's column could hold: a crafted cursor must
    not reach the database as a value of another type (SQLite would compare it anyway
    and answer a meaningless page)."""
    if value is None:
        return bool(getattr(order.column, "nullable", False))
    expected = _expected_type(order)
    if expected is bool or expected is uuid.UUID:
        return isinstance(value, expected)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool) and value in _INT_RANGE
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and _finite(value)
    if expected is str:
        return isinstance(value, str) and "\x00" not in value and _utf8(value)
    if expected is dt.datetime:
        # An aware key for an aware column (UtcDateTime refuses naive ones), naive otherwise.
        aware = bool(getattr(order.column.type, "timezone", False))
        return isinstance(value, dt.datetime) and (value.tzinfo is not None or not aware)
    return True  # a type not listed here (an enum...): the database judges, as it did


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer beyond any float
        return False


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode_cursor(orders: Sequence[Order], values: Sequence[Any]) -> str:
    """An opaque token for the position after ``values`` in the ``orders`` ordering."""
    doc = {"o": _fingerprint(orders), "v": [_encode_value(v) for v in values]}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(orders: Sequence[Order], token: str) -> list[Any]:
    """The key values a token holds; InvalidQuery for a token of another ordering, or for
    anything else that is not a token this service issued (whatever its shape)."""
    not_ours = InvalidQuery("the cursor is not one this service issued")
    if not isinstance(token, str) or not token or len(token) > MAX_CURSOR_CHARS:
        raise not_ours
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("v"), list):
            raise ValueError("not a cursor document")
        values = [_decode_value(item) for item in doc["v"]]
        fingerprint = doc.get("o")
    except (binascii.Error, ValueError, TypeError, RecursionError):
        # ValueError covers bad JSON and text, UUIDs, dates and digit counts alike.
        raise not_ours from None
    if fingerprint != _fingerprint(orders) or len(values) != len(orders):
        raise InvalidQuery("the cursor belongs to another ordering of the results")
    if not all(_fits(order, value) for order, value in zip(orders, values, strict=True)):
        raise not_ours
    return values


def keyset_params(values: Sequence[Any]) -> dict[str, Any]:
    """The bound values of :func:`keyset_condition` for a decoded cursor."""
    return {f"cursor_{n}": value for n, value in enumerate(values)}


def keyset_condition(orders: Sequence[Order], backward: bool) -> ColumnElement[bool]:
    """Rows strictly after the cursor's key in the ordering (before it when ``backward``);
    the key comes in as the parameters :func:`keyset_params` names.

    Written out as ``a > x OR (a = x AND b > y) ...`` so mixed directions work
    on every dialect.
    """
    keys = [bindparam(f"cursor_{n}", type_=o.column.type) for n, o in enumerate(orders)]
    branches: list[ColumnElement[bool]] = []
    for n, order in enumerate(orders):
        later = order.descending == backward  # ascending & forward: greater comes later
        step = order.column > keys[n] if later else order.column < keys[n]
        equal = [orders[i].column == keys[i] for i in range(n)]
        branches.append(and_(*equal, step) if equal else step)
    return or_(*branches)
