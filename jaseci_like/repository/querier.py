"""Reading: one row by primary key (``Querier``), many with pages (``BatchQuerier``)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

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
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
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

R = TypeVar("R")
#: Names of the columns :meth:`BatchQuerier.execute_with_parent` adds to a parent's.
_TOTAL_COLUMN = "_jl_total"
_PAGE_COLUMN = "_jl_page_{}"
_PART_COLUMN = "_jl_part"
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
class WithParent:
    """A page read with its parent in one statement (:meth:`BatchQuerier.execute_with_parent`):
    ``parent`` maps the parent query's column keys to the values of its row (None
    when it has none); the page's rows are tuples of the paged query's columns."""

    parent: dict[str, Any] | None
    page: Page[tuple[Any, ...]]


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

    def _check(self) -> None:
        if not self.orders:
            raise InvalidQuery("a paged query needs an ordering")
        if self.cache_key is not None and self.scope is not None:
            raise InvalidQuery("a cached query takes its scope as conditions and params")

    def _counted(self) -> Select[Any]:
        return self._built(
            "count", lambda: select(func.count()).select_from(self.filtered().subquery())
        )

    async def execute(self, conn: SqlConnection) -> Page[Row[Any]]:
        self._check()
        total = None
        if self.count_total:
            total = int((await conn.execute(self._counted(), self.params)).scalar_one())
        stmt, params, _ = self._paged()
        rows = list((await conn.execute(stmt, params)).all())
        return self._page_of(rows, total, lambda row: row._mapping)

    async def execute_with_parent(self, conn: SqlConnection, parent: Select[Any]) -> WithParent:
        """This page and ``parent`` (a query of at most one row: what the rows belong to,
        e.g. their group with its figures) in ONE statement, with the total count when
        asked: the parent's row first, then the page's (``UNION ALL``, ordered). No
        parent row reads as ``parent`` None. With a cache key, ``parent`` must be the
        same object on every call of that key."""
        self._check()
        paged, params, part = self._paged()
        stmt = self._built(f"parent:{part}", lambda: self._with_parent(parent, paged))
        result = await conn.execute(stmt, params)
        names = list(result.keys())
        rows = result.all()
        # Every row: the parent's columns, the total if counted, the page's, the part.
        first = names.index(_PAGE_COLUMN.format(0))
        width = first - self.count_total
        head: dict[str, Any] | None = None
        total = None
        if rows and rows[0][-1] == 0:
            head = dict(zip(names[:width], rows[0], strict=False))
            total = int(rows[0][width]) if self.count_total else None
            rows = rows[1:]
        items = [tuple(row[first:-1]) for row in rows]

        def keys_of(item: tuple[Any, ...]) -> dict[Any, Any]:  # cursor pages only
            at = self._order_positions()
            return {o.column: item[n] for o, n in zip(self.orders, at, strict=True)}

        return WithParent(head, self._page_of(items, total, keys_of))

    def _order_positions(self) -> list[int]:
        """Where each ordering column is among the query's columns (a cursor needs them)."""
        listed = list(self.query.selected_columns)
        try:
            return [next(n for n, c in enumerate(listed) if c is o.column) for o in self.orders]
        except StopIteration:
            raise InvalidQuery(
                "a page read with its parent must select its ordering columns"
            ) from None

    def _with_parent(self, parent: Select[Any], paged: Select[Any]) -> Select[Any]:
        """``parent``'s row (``part`` 0) and ``paged``'s rows (``part`` 1), in order."""
        listed = list(self.query.selected_columns)
        extra: list[Any] = []
        if self.count_total:
            extra.append(self._counted().scalar_subquery().label(_TOTAL_COLUMN))
        # The first part names and types the union's columns: the page's are typed NULLs.
        extra += [
            type_coerce(null(), c.type).label(_PAGE_COLUMN.format(n)) for n, c in enumerate(listed)
        ]
        head = parent.add_columns(*extra, literal_column("0").label(_PART_COLUMN))
        rows = paged.subquery()
        blanks = [null()] * (len(parent.selected_columns) + self.count_total)
        both = union_all(head, select(*blanks, *rows.c, literal_column("1"))).subquery()
        first = len(parent.selected_columns) + self.count_total
        at = self._order_positions()
        backward = isinstance(self.pagination, CursorPagination) and self.pagination.backward
        keys = [
            Order(both.c[first + n], o.descending).clause(reverse=backward)
            for o, n in zip(self.orders, at, strict=True)
        ]
        return select(both).order_by(both.c[_PART_COLUMN], *keys)

    def _paged(self) -> tuple[Select[Any], dict[str, Any], str]:
        """The page's query (ordered, one row more than the page, for ``has_next``), its
        parameters, and the name of its shape (for the cache)."""
        page = self.pagination
        if isinstance(page, OffsetPagination):
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
            return stmt, params, "offset"
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
        return self._built(part, build), params, part

    def _page_of(
        self, rows: list[R], total: int | None, keys_of: Callable[[R], Mapping[Any, Any]]
    ) -> Page[R]:
        """The page from the rows its query read (``keys_of``: a row's ordering keys by
        column, for the cursors)."""
        page = self.pagination
        if isinstance(page, OffsetPagination):
            return Page(tuple(rows[: page.limit]), total, len(rows) > page.limit, page.offset > 0)
        token = page.before if page.backward else page.after
        more = len(rows) > page.limit
        rows = rows[: page.limit]
        if page.backward:
            rows.reverse()
            has_next, has_previous = token is not None, more
        else:
            has_next, has_previous = more, token is not None
        first = self._cursor_of(keys_of(rows[0])) if rows else None
        last = self._cursor_of(keys_of(rows[-1])) if rows else None
        return Page(
            tuple(rows),
            total,
            has_next,
            has_previous,
            next_cursor=last if has_next else None,
            previous_cursor=first if has_previous else None,
        )

    def _cursor_of(self, keys: Mapping[Any, Any]) -> str:
        return encode_cursor(self.orders, [keys[o.column] for o in self.orders])
