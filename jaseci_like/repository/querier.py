"""Reading: one row by primary key (``Querier``), many with pages (``BatchQuerier``)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Dialect,
    Executable,
    Integer,
    Result,
    Row,
    Select,
    Table,
    bindparam,
    func,
    select,
)

from jaseci_like.repository.errors import InvalidQuery
from jaseci_like.repository.pagination import (
    CursorPagination,
    OffsetPagination,
    Order,
    Page,
    Pagination,
    decode_cursor,
    encode_cursor,
    keyset_condition,
    keyset_params,
)
from jaseci_like.repository.scope import (
    ScopeColumns,
    SearchScope,
    any_scope_condition,
    scope_conditions,
)

_LIMIT = bindparam("page_limit", type_=Integer)
_OFFSET = bindparam("page_offset", type_=Integer)
#: Statements of BatchQueriers that name their shape with ``cache_key``.
_BUILT: dict[Hashable, Select[Any]] = {}


class SqlConnection(Protocol):
    """What reading needs of a connection: an ``AsyncConnection``, or a reader's."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]: ...


def pk_conditions(table: Table, pk: Any) -> list[ColumnElement[bool]]:
    """``pk`` (a value, or a tuple for a composite key) as conditions on ``table``'s key."""
    columns = list(table.primary_key.columns)
    values = pk if isinstance(pk, tuple) else (pk,)
    if len(values) != len(columns):
        raise InvalidQuery(
            f"{table.name}: primary key has {len(columns)} column(s), got {len(values)} value(s)"
        )
    return [c == v for c, v in zip(columns, values, strict=True)]


@dataclass(frozen=True)
class Querier:
    """One row of ``table`` by primary key, within ``scope``; ``lock`` adds FOR UPDATE."""

    table: Table
    pk: Any
    scope: SearchScope | None = None
    scope_columns: ScopeColumns | None = None
    lock: bool = False

    async def execute(self, conn: SqlConnection) -> Row[Any] | None:
        stmt = select(self.table).where(
            *pk_conditions(self.table, self.pk), *scope_conditions(self.scope, self.scope_columns)
        )
        if self.lock:
            stmt = stmt.with_for_update()
        return (await conn.execute(stmt)).first()


@dataclass(frozen=True)
class BatchQuerier:
    """Rows of ``query`` matching ``conditions`` and ``scope``, one page at a time.

    ``orders`` must end with a unique key for cursor pagination (and for offset
    pages to be stable). ``count_total`` adds one ``count(*)`` statement.

    A hot query may name its shape with ``cache_key``: then ``query`` and
    ``conditions`` must be the same objects on every call (values go in through
    ``bindparam()`` and ``params``), and the built statements are reused.
    """

    query: Select[Any]
    orders: Sequence[Order]
    conditions: Sequence[ColumnElement[bool]] = ()
    pagination: Pagination = field(default_factory=OffsetPagination)
    scope: SearchScope | None = None
    scope_columns: ScopeColumns | None = None
    count_total: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)
    cache_key: Hashable | None = None

    def with_scopes(self, scopes: Sequence[SearchScope]) -> BatchQuerier:
        """This query limited to the rows of any of ``scopes``, mapped through
        ``scope_columns``; :class:`EmptySearchScope` for no scope at all."""
        if self.cache_key is not None:
            raise InvalidQuery("a cached query takes its scopes as conditions and params")
        columns = self.scope_columns if self.scope_columns is not None else ScopeColumns()
        return replace(self, conditions=(*self.conditions, any_scope_condition(scopes, columns)))

    def filtered(self) -> Select[Any]:
        """The query with conditions and scope, before ordering and paging."""
        return self.query.where(*self.conditions, *scope_conditions(self.scope, self.scope_columns))

    def _built(self, part: str, build: Callable[[], Select[Any]]) -> Select[Any]:
        if self.cache_key is None:
            return build()
        key = (self.cache_key, part)
        stmt = _BUILT.get(key)
        if stmt is None:
            stmt = _BUILT[key] = build()
        return stmt

    async def execute(self, conn: SqlConnection) -> Page[Row[Any]]:
        if not self.orders:
            raise InvalidQuery("a paged query needs an ordering")
        if self.cache_key is not None and self.scope is not None:
            raise InvalidQuery("a cached query takes its scope as conditions and params")
        total = None
        if self.count_total:
            counted = self._built(
                "count",
                lambda: select(func.count()).select_from(self.filtered().subquery()),
            )
            total = int((await conn.execute(counted, self.params)).scalar_one())
        if isinstance(self.pagination, CursorPagination):
            return await self._cursor_page(conn, self.pagination, total)
        return await self._offset_page(conn, self.pagination, total)

    async def _offset_page(
        self, conn: SqlConnection, page: OffsetPagination, total: int | None
    ) -> Page[Row[Any]]:
        stmt = self._built(
            "offset",
            lambda: (
                self.filtered()
                .order_by(*(o.clause() for o in self.orders))
                .limit(_LIMIT)
                .offset(_OFFSET)
            ),
        )
        params = {**self.params, "page_limit": page.limit + 1, "page_offset": page.offset}
        rows = list((await conn.execute(stmt, params)).all())
        return Page(tuple(rows[: page.limit]), total, len(rows) > page.limit, page.offset > 0)

    async def _cursor_page(
        self, conn: SqlConnection, page: CursorPagination, total: int | None
    ) -> Page[Row[Any]]:
        token = page.before if page.backward else page.after
        params = {**self.params, "page_limit": page.limit + 1}
        if token is not None:
            params.update(keyset_params(decode_cursor(self.orders, token)))

        def build() -> Select[Any]:
            stmt = self.filtered()
            if token is not None:
                stmt = stmt.where(keyset_condition(self.orders, page.backward))
            order = (o.clause(reverse=page.backward) for o in self.orders)
            return stmt.order_by(*order).limit(_LIMIT)

        part = f"cursor:{'back' if page.backward else 'fwd'}:{token is not None}"
        rows = list((await conn.execute(self._built(part, build), params)).all())
        more = len(rows) > page.limit
        rows = rows[: page.limit]
        if page.backward:
            rows.reverse()
            has_next, has_previous = token is not None, more
        else:
            has_next, has_previous = more, token is not None
        first = self._cursor_of(rows[0]) if rows else None
        last = self._cursor_of(rows[-1]) if rows else None
        return Page(
            tuple(rows),
            total,
            has_next,
            has_previous,
            next_cursor=last if has_next else None,
            previous_cursor=first if has_previous else None,
        )

    def _cursor_of(self, row: Row[Any]) -> str:
        mapping = row._mapping
        return encode_cursor(self.orders, [mapping[o.column] for o in self.orders])
