"""Search scopes: who a query is limited to, turned into SQL conditions.

A scope names a tenant (a domain, a group, a user); the caller says which
column (or which condition) stands for that tenant in its query, so one scope
type serves every table::

    columns = ScopeColumns(domain=groups.c.domain_name)
    stmt = select(groups).where(*DomainScope("acme").to_conditions(columns))
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, or_

from jaseci_like.repository.errors import EmptySearchScope, InvalidQuery

#: A column compared with ``==``, or a function building the condition itself
#: (e.g. an EXISTS over a membership table for a user scope).
ScopeTarget = ColumnElement[Any] | Callable[[Any], ColumnElement[bool]]


@dataclass(frozen=True)
class ScopeColumns:
    """Where each kind of tenant lives in one query; None: that scope does not apply."""

    domain: ScopeTarget | None = None
    group: ScopeTarget | None = None
    user: ScopeTarget | None = None


class SearchScope(Protocol):
    """Anything that limits a query to one tenant."""

    def to_conditions(self, columns: ScopeColumns) -> list[ColumnElement[bool]]: ...


def _condition(target: ScopeTarget | None, value: Any, scope: object) -> ColumnElement[bool]:
    if target is None:
        # A scope that cannot be applied must never quietly widen the query.
        raise InvalidQuery(f"{scope!r} cannot limit this query: no column is mapped for it")
    if isinstance(target, ColumnElement):
        condition: ColumnElement[bool] = target == value
        return condition
    return target(value)


@dataclass(frozen=True)
class DomainScope:
    """Rows of one domain."""

    domain: str

    def to_conditions(self, columns: ScopeColumns) -> list[ColumnElement[bool]]:
        return [_condition(columns.domain, self.domain, self)]


@dataclass(frozen=True)
class GroupScope:
    """Rows of one group (project)."""

    group_id: uuid.UUID

    def to_conditions(self, columns: ScopeColumns) -> list[ColumnElement[bool]]:
        return [_condition(columns.group, self.group_id, self)]


@dataclass(frozen=True)
class UserScope:
    """Rows a user owns or belongs to."""

    user_id: uuid.UUID

    def to_conditions(self, columns: ScopeColumns) -> list[ColumnElement[bool]]:
        return [_condition(columns.user, self.user_id, self)]


def scope_conditions(
    scope: SearchScope | None, columns: ScopeColumns | None
) -> list[ColumnElement[bool]]:
    """The conditions of ``scope`` (none for no scope: a global, trusted query)."""
    if scope is None:
        return []
    return scope.to_conditions(columns if columns is not None else ScopeColumns())


def any_scope_condition(
    scopes: Sequence[SearchScope], columns: ScopeColumns
) -> ColumnElement[bool]:
    """Rows of any of ``scopes`` (OR; the conditions of one scope AND-ed).

    No scope, or a scope giving no condition, is refused: either would quietly make
    the query global.
    """
    if not scopes:
        raise EmptySearchScope("a scoped query needs at least one scope; ask for a global one")
    each: list[ColumnElement[bool]] = []
    for scope in scopes:
        conditions = scope.to_conditions(columns)
        if not conditions:
            raise InvalidQuery(f"{scope!r} gave no condition to limit the query with")
        each.append(and_(*conditions))
    return or_(*each)
