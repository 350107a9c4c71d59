"""All SQL of the group-config service. Each public method is ONE transaction.

A dotfile operation resolves the group, runs the service's guard (who may do
what), reads and changes, all inside one ``read_ops()``/``write_ops()`` block.
Writers lock the group row first (``SELECT ... FOR UPDATE`` on PostgreSQL;
SQLite's BEGIN IMMEDIATE already serializes them), so the limits hold however
many writers race.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from jaseci_like_services.group_config.errors import (
    DomainNotFound,
    DotfileAlreadyExists,
    DotfileNotFound,
    EntityAlreadyExists,
    GroupNotFound,
    InvalidInput,
    MembershipNotFound,
    UserNotFound,
)
from jaseci_like_services.group_config.models import (
    ACTIVE_ONLY,
    domains,
    dotfiles,
    groups,
    memberships,
    users,
)
from jaseci_like_services.group_config.types import (
    Domain,
    Dotfile,
    DotfileChanges,
    DotfileFilter,
    DotfileList,
    DotfileOrder,
    DotfileResult,
    DotfileSpec,
    DotfileStatus,
    Group,
    GroupAccess,
    GroupRef,
    Guard,
    Limits,
    Role,
    Usage,
    User,
)
from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.repository import (
    AlreadyExists,
    BatchPurger,
    BatchQuerier,
    BatchUpdater,
    BulkResult,
    Creator,
    DbOps,
    DomainScope,
    Order,
    Page,
    Pagination,
    Purger,
    Querier,
    ReadOps,
    ScopeColumns,
    SearchScope,
    Updater,
    Upserter,
    UserScope,
    WriteOps,
    changed,
    translate_row_error,
    utcnow,
)

ACTIVE = DotfileStatus.ACTIVE.value
DELETED = DotfileStatus.DELETED.value
#: Constants written into the SQL, not bound: SQLite runs a listing over twice as fast
#: with ``status = 'active'`` than with ``status = ?``, and PostgreSQL can match the
#: partial index (``WHERE status = 'active'``) in a generic plan only so.
_IS_ACTIVE = dotfiles.c.status == literal_column(f"'{ACTIVE}'")
_ZERO: ColumnElement[int] = literal_column("0")

GROUP_COLUMNS = ScopeColumns(
    domain=groups.c.domain_name,
    group=groups.c.id,
    user=lambda user_id: exists().where(
        memberships.c.group_id == groups.c.id, memberships.c.user_id == user_id
    ),
)
USER_COLUMNS = ScopeColumns(domain=users.c.domain_name, user=users.c.id)
DOMAIN_COLUMNS = ScopeColumns(domain=domains.c.name)

# -- statements built once (their compiled form is cached by SQLAlchemy) ------------------


@cache
def _group_select(by_id: bool, with_member: bool, lock: bool, usage: bool = False) -> Select[Any]:
    """The group by id or by (domain, name); ``with_member``: whether ``member_id`` is a
    member; ``usage``: the count and bytes of its active dotfiles (reads only)."""
    columns: list[Any] = [groups.c.id, groups.c.domain_name, groups.c.name, groups.c.created_at]
    if with_member:
        columns.append(
            exists()
            .where(
                memberships.c.group_id == groups.c.id,
                memberships.c.user_id == bindparam("member_id"),
            )
            .label("is_member")
        )
    if usage:
        # A subquery per figure, each an index range of the group's rows: SQLite runs
        # them several times faster than a join grouped by the group.
        active = (dotfiles.c.group_id == groups.c.id, _IS_ACTIVE)
        size = func.coalesce(func.sum(dotfiles.c.path_bytes + dotfiles.c.data_bytes), _ZERO)
        columns += [
            select(func.count()).where(*active).scalar_subquery().label("n_active"),
            select(size).where(*active).scalar_subquery().label("active_bytes"),
        ]
    where: ColumnElement[bool] = (
        groups.c.id == bindparam("group_id")
        if by_id
        else and_(groups.c.domain_name == bindparam("domain"), groups.c.name == bindparam("name"))
    )
    stmt = select(*columns).where(where)
    return stmt.with_for_update(of=groups) if lock else stmt


_PATHS: BindParameter[str] = bindparam("paths", expanding=True)
_ONE_OF_PATHS = dotfiles.c.path.in_(_PATHS)
#: count and bytes of a group's active dotfiles, and how many (and how many data
#: bytes) of them have one of the given paths: one statement for every check.
_USAGE = select(
    func.count(),
    func.coalesce(func.sum(dotfiles.c.path_bytes + dotfiles.c.data_bytes), _ZERO),
    func.coalesce(func.sum(case((_ONE_OF_PATHS, 1), else_=0)), 0),
    func.coalesce(func.sum(case((_ONE_OF_PATHS, dotfiles.c.data_bytes), else_=0)), 0),
).where(dotfiles.c.group_id == bindparam("group_id"), _IS_ACTIVE)

#: The group's usage, and whether ``path`` is taken, as the create below found them
#: (MATERIALIZED: read once, before the insert, on both dialects).
_USAGE_AT_CREATE = (
    select(
        func.count().label("n"),
        func.coalesce(func.sum(dotfiles.c.path_bytes + dotfiles.c.data_bytes), _ZERO).label("b"),
        func.coalesce(
            func.sum(case((dotfiles.c.path == bindparam("path"), 1), else_=0)), _ZERO
        ).label("taken"),
    )
    .where(dotfiles.c.group_id == bindparam("group_id"), _IS_ACTIVE)
    .cte("usage_at_create")
    .prefix_with("MATERIALIZED")
)


def _bound(name: str, column: str | None = None) -> BindParameter[Any]:
    """A parameter typed as ``column`` (default: ``name``) of the dotfiles table."""
    return bindparam(name, type_=dotfiles.c[column or name].type)


_CREATED_COLUMNS = (
    "group_id", "path", "permission", "data", "status",
    "path_bytes", "data_bytes", "created_at", "updated_at",
)  # fmt: skip
#: Create one dotfile if the path is free and the group's limits allow it, and give back
#: the row with the usage before it: one statement after the group is locked (a new
#: statement, so it counts what the writers before it committed). No row: refused.
_CREATE_CHECKED = (
    insert(dotfiles)
    .from_select(
        _CREATED_COLUMNS,
        select(
            _bound("group_id"),
            _bound("path"),
            _bound("permission"),
            _bound("data"),
            literal_column(f"'{ACTIVE}'"),
            _bound("path_bytes"),
            _bound("data_bytes"),
            _bound("created_at"),
            _bound("created_at", "updated_at"),
        )
        .select_from(_USAGE_AT_CREATE)
        .where(
            _USAGE_AT_CREATE.c.taken == 0,
            _USAGE_AT_CREATE.c.n < bindparam("max_dotfiles", type_=BigInteger),
            _USAGE_AT_CREATE.c.b + bindparam("size", type_=BigInteger)
            <= bindparam("max_bytes", type_=BigInteger),
        ),
    )
    .returning(
        *dotfiles.c,
        select(_USAGE_AT_CREATE.c.n).scalar_subquery(),
        select(_USAGE_AT_CREATE.c.b).scalar_subquery(),
    )
    .add_cte(_USAGE_AT_CREATE)
)

_ACTIVE_DOTFILE = select(dotfiles).where(
    dotfiles.c.group_id == bindparam("group_id"),
    dotfiles.c.path == bindparam("path"),
    _IS_ACTIVE,
)
_ACTIVE_SIZES = select(dotfiles.c.path, dotfiles.c.data_bytes).where(
    dotfiles.c.group_id == bindparam("group_id"),
    _IS_ACTIVE,
    dotfiles.c.path.in_(bindparam("paths", expanding=True)),
)
_USER_BY_EMAIL = select(users).where(users.c.email == bindparam("email"))
#: A submitter re-read by a write: FOR SHARE (PostgreSQL) holds off a concurrent
#: demotion or deletion until the write commits, without blocking other readers.
_SUBMITTER = select(users).where(users.c.id == bindparam("user_id"))
_SUBMITTER_SHARED = _SUBMITTER.with_for_update(read=True)
#: A listing's columns: the group's id is known (its UUID is not parsed once per row),
#: and the byte counts are the usage's business.
_LISTED_COLUMNS = select(
    dotfiles.c.id,
    dotfiles.c.path,
    dotfiles.c.permission,
    dotfiles.c.data,
    dotfiles.c.status,
    dotfiles.c.created_at,
    dotfiles.c.updated_at,
)
#: A group named by (domain, name), as a value: a listing finds its rows by it in the
#: statement that resolves the group.
_GROUP_ID_BY_NAME = (
    select(groups.c.id)
    .where(groups.c.domain_name == bindparam("domain"), groups.c.name == bindparam("name"))
    .scalar_subquery()
)


@cache
def _listed(by_id: bool, prefixed: bool) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a listing: the group's active dotfiles (the group by id, or by
    domain and name), whose path starts with ``prefix`` if ``prefixed``."""
    group_id = bindparam("group_id") if by_id else _GROUP_ID_BY_NAME
    listed = (dotfiles.c.group_id == group_id, _IS_ACTIVE)
    if not prefixed:
        return listed
    # substr, not LIKE: literal and case-sensitive on every dialect.
    return (
        *listed,
        func.substr(dotfiles.c.path, 1, bindparam("prefix_length")) == bindparam("prefix"),
    )


_CREATED_ORDER = (Order(dotfiles.c.id),)
_PATH_ORDER = (Order(dotfiles.c.path), Order(dotfiles.c.id))


@dataclass(frozen=True)
class _Counts:
    count: int
    bytes: int
    matched: int
    matched_data_bytes: int


# -- rows to values ---------------------------------------------------------------------------


_STATUS = {status.value: status for status in DotfileStatus}


# Rows are unpacked by position (the tables' column order): attribute access on a
# Row costs several times more, and listings convert many rows.
def to_dotfile(row: Sequence[Any]) -> Dotfile:
    id_, group_id, path, permission, data, status, _, _, created_at, updated_at = row
    return Dotfile(id_, group_id, path, permission, data, _STATUS[status], created_at, updated_at)


def listed_dotfile(group_id: uuid.UUID) -> Callable[[Sequence[Any]], Dotfile]:
    """A row of ``_LISTED_COLUMNS`` of group ``group_id`` to a Dotfile."""

    def to_value(row: Sequence[Any]) -> Dotfile:
        id_, path, permission, data, status, created_at, updated_at = row
        return Dotfile(
            id_, group_id, path, permission, data, _STATUS[status], created_at, updated_at
        )

    return to_value


def to_group(row: Sequence[Any]) -> Group:
    id_, domain, name, created_at = row[:4]
    return Group(id_, domain, name, created_at)


def to_user(row: Sequence[Any]) -> User:
    id_, email, role, domain, created_at = row
    return User(id_, email, Role(role), domain, created_at)


def to_domain(row: Sequence[Any]) -> Domain:
    name, created_at = row
    return Domain(name, created_at)


def _sizes(path: str, data: str) -> tuple[int, int]:
    return len(path.encode()), len(data.encode())


def _group_params(ref: GroupRef, member: uuid.UUID | None) -> dict[str, Any]:
    """The parameters of ``_group_select`` for ``ref`` (and ``member``'s membership)."""
    params: dict[str, Any] = {}
    if ref.id is not None:
        params["group_id"] = ref.id
    elif ref.domain is None:
        raise InvalidInput(f"group {ref.name!r}: a group named by name needs a domain")
    else:
        params["domain"], params["name"] = ref.domain, ref.name
    if member is not None:
        params["member_id"] = member
    return params


def _access(ref: GroupRef, row: Mapping[Any, Any] | None, with_member: bool) -> GroupAccess:
    """The group ``_group_select`` read for ``ref``; GroupNotFound, for everyone, if none."""
    if row is None or (ref.domain is not None and row["domain_name"] != ref.domain):
        raise GroupNotFound(f"no group {ref}")
    group = Group(row["id"], row["domain_name"], row["name"], row["created_at"])
    return GroupAccess(group, bool(row["is_member"]) if with_member else False)


class GroupConfigDbSource:
    """Dotfiles, groups, users, domains and memberships on one engine."""

    def __init__(self, engine: AsyncEngine, limits: Limits) -> None:
        self._ops = DbOps(engine)
        self.limits = limits

    async def ping(self) -> bool:
        """The tables answer (a migration that did not run fails here)."""
        async with self._ops.read_ops() as r:
            await r.execute(select(dotfiles.c.id).limit(1))
        return True

    # -- shared steps (inside a caller's transaction) ------------------------------------------

    async def _resolve(
        self, ops: ReadOps, ref: GroupRef, guard: Guard | None, lock: bool
    ) -> GroupAccess:
        """The group ``ref`` names (GroupNotFound for everyone if none), then ``guard``."""
        return (await self._resolve_row(ops, ref, guard, lock))[0]

    async def _resolve_usage(
        self, ops: ReadOps, ref: GroupRef, guard: Guard
    ) -> tuple[GroupAccess, Usage]:
        """:meth:`_resolve`, and the group's usage, in one statement (for reads)."""
        access, row = await self._resolve_row(ops, ref, guard, False, usage=True)
        return access, self._usage(int(row.n_active), int(row.active_bytes))

    async def _judged(self, ops: ReadOps, guard: Guard, lock: bool) -> Guard:
        """``guard`` for its submitter as this transaction reads them (see ``Submitter``)."""
        submitter = guard.submitter
        if submitter is None:
            return guard
        stmt = _SUBMITTER_SHARED if lock else _SUBMITTER
        row = (await ops.execute(stmt, {"user_id": submitter.id})).first()
        if row is None:
            raise UserNotFound(
                f"user {submitter.id} no longer exists; work they queued does not run"
            )
        user = to_user(row).identity()
        if submitter.credential is not None:
            await submitter.credential.verify(ops, user)
        return guard.judging(user)

    async def _resolve_row(
        self, ops: ReadOps, ref: GroupRef, guard: Guard | None, lock: bool, usage: bool = False
    ) -> tuple[GroupAccess, Row[Any]]:
        if guard is not None:
            guard = await self._judged(ops, guard, lock)
        member = guard.member_id if guard is not None else None
        params = _group_params(ref, member)
        stmt = _group_select(ref.id is not None, member is not None, lock, usage)
        row = (await ops.execute(stmt, params)).first()
        access = _access(ref, None if row is None else row._mapping, member is not None)
        if guard is not None:
            guard.check(access)
        return access, row  # type: ignore[return-value]  # _access refused a missing row

    async def _counts(self, ops: ReadOps, group_id: uuid.UUID, paths: Sequence[str]) -> _Counts:
        row = (await ops.execute(_USAGE, {"group_id": group_id, "paths": list(paths)})).one()
        count, size, matched, matched_data_bytes = (int(value) for value in row)
        return _Counts(count, size, matched, matched_data_bytes)

    def _usage(self, count: int, size: int) -> Usage:
        return Usage(count, size, self.limits.max_dotfiles, self.limits.max_bytes)

    # -- dotfiles ---------------------------------------------------------------------------

    async def create_dotfile(self, ref: GroupRef, guard: Guard, spec: DotfileSpec) -> DotfileResult:
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            gid = access.group.id
            path_bytes, data_bytes = _sizes(spec.path, spec.data)
            size = path_bytes + data_bytes
            params = {
                "group_id": gid,
                "path": spec.path,
                "permission": spec.permission,
                "data": spec.data,
                "path_bytes": path_bytes,
                "data_bytes": data_bytes,
                "created_at": utcnow(),
                "size": size,
                "max_dotfiles": self.limits.max_dotfiles,
                "max_bytes": self.limits.max_bytes,
            }
            row = (await self._write(w, _CREATE_CHECKED, params, spec.path)).first()
            if row is None:  # refused: tell why (the group is still locked, nothing moved)
                counts = await self._counts(w, gid, (spec.path,))
                if counts.matched:
                    raise DotfileAlreadyExists(f"dotfile {spec.path!r} already exists in the group")
                before = self._usage(counts.count, counts.bytes)
                self.limits.check(counts.count + 1, counts.bytes + size, before)
                raise AssertionError("a create was refused within the limits")
            count, used = int(row[-2]), int(row[-1])
            return DotfileResult(to_dotfile(row[:-2]), self._usage(count + 1, used + size))

    @staticmethod
    async def _write(w: WriteOps, stmt: Any, params: dict[str, Any], path: str) -> Any:
        """``stmt``; the partial unique index's refusal (if two writers ever race) as
        DotfileAlreadyExists."""
        try:
            return await w.execute(stmt, params)
        except Exception as exc:
            error = translate_row_error(exc, "gc_dotfiles row")
            if isinstance(error, AlreadyExists):
                raise DotfileAlreadyExists(
                    f"dotfile {path!r} already exists in the group"
                ) from None
            if error is not None:
                raise error from exc
            raise

    async def _insert(
        self, w: WriteOps, group_id: uuid.UUID, spec: DotfileSpec, path_bytes: int, data_bytes: int
    ) -> Row[Any]:
        now = utcnow()
        values = {
            "group_id": group_id,
            "path": spec.path,
            "permission": spec.permission,
            "data": spec.data,
            "status": ACTIVE,
            "path_bytes": path_bytes,
            "data_bytes": data_bytes,
            "created_at": now,
            "updated_at": now,
        }
        try:
            return await w.create(Creator(dotfiles, values))
        except AlreadyExists:
            # The partial unique index: the last word if two writers ever race.
            raise DotfileAlreadyExists(
                f"dotfile {spec.path!r} already exists in the group"
            ) from None

    async def get_dotfile(self, ref: GroupRef, guard: Guard, path: str) -> Dotfile:
        async with self._ops.read_ops() as r:
            access = await self._resolve(r, ref, guard, lock=False)
            params = {"group_id": access.group.id, "path": path}
            row = (await r.execute(_ACTIVE_DOTFILE, params)).first()
            if row is None:
                raise DotfileNotFound(f"no dotfile {path!r} in group {access.group.name!r}")
            return to_dotfile(row)

    async def search_dotfiles(
        self,
        ref: GroupRef,
        guard: Guard,
        where: DotfileFilter,
        order: DotfileOrder,
        pagination: Pagination,
    ) -> DotfileList:
        """ONE statement resolves the group (with its usage and the caller's membership)
        and reads the page; the guard judges the group before anything is returned.
        A submitter is re-read first, in the same transaction."""
        if guard.submitter is None:
            async with self._ops.read_statement() as r:
                return await self._search(r, ref, guard, where, order, pagination)
        async with self._ops.read_ops() as r:
            judged = await self._judged(r, guard, lock=False)
            return await self._search(r, ref, judged, where, order, pagination)

    async def _search(
        self,
        ops: ReadOps,
        ref: GroupRef,
        guard: Guard,
        where: DotfileFilter,
        order: DotfileOrder,
        pagination: Pagination,
    ) -> DotfileList:
        member = guard.member_id
        by_id = ref.id is not None
        params = _group_params(ref, member)
        prefix = where.path_prefix
        if prefix:
            params.update(prefix=prefix, prefix_length=len(prefix))
        spec = BatchQuerier(
            _LISTED_COLUMNS,
            _PATH_ORDER if order is DotfileOrder.PATH else _CREATED_ORDER,
            _listed(by_id, bool(prefix)),
            pagination,
            count_total=bool(prefix),  # otherwise the usage count is the total
            params=params,
            cache_key=("gc_dotfiles.search", order, bool(prefix), by_id, member is not None),
        )
        parent = _group_select(by_id, member is not None, lock=False, usage=True)
        found = await ops.search_with_parent(spec, parent)
        access = _access(ref, found.parent, member is not None)
        guard.check(access)
        assert found.parent is not None  # _access refused a missing group
        usage = self._usage(int(found.parent["n_active"]), int(found.parent["active_bytes"]))
        page = found.page
        if page.total_count is None:
            page = replace(page, total_count=usage.count)
        return DotfileList(page.map(listed_dotfile(access.group.id)), usage)

    async def update_dotfile(
        self, ref: GroupRef, guard: Guard, path: str, changes: DotfileChanges
    ) -> DotfileResult:
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            gid = access.group.id
            counts = await self._counts(w, gid, (path,))
            if not counts.matched:
                raise DotfileNotFound(f"no dotfile {path!r} in group {access.group.name!r}")
            values = self._changes(changes)
            size = counts.bytes
            if "data_bytes" in values:
                size += values["data_bytes"] - counts.matched_data_bytes
                self.limits.check(counts.count, size, self._usage(counts.count, counts.bytes))
            stmt_where = [dotfiles.c.group_id == gid, _IS_ACTIVE]
            rows = await w.execute(
                dotfiles.update()
                .where(*stmt_where, dotfiles.c.path == path)
                .values(values)
                .returning(*dotfiles.c)
            )
            return DotfileResult(to_dotfile(rows.one()), self._usage(counts.count, size))

    @staticmethod
    def _changes(changes: DotfileChanges) -> dict[str, Any]:
        values = changed({"permission": changes.permission, "data": changes.data})
        if "data" in values:
            values["data_bytes"] = len(values["data"].encode())
        values["updated_at"] = utcnow()
        return values

    async def delete_dotfile(self, ref: GroupRef, guard: Guard, path: str) -> Dotfile:
        """Soft delete: the row stays with status ``deleted``; the path is free again."""
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            stmt = (
                dotfiles.update()
                .where(
                    dotfiles.c.group_id == access.group.id,
                    dotfiles.c.path == path,
                    _IS_ACTIVE,
                )
                .values(status=DELETED, updated_at=utcnow())
                .returning(*dotfiles.c)
            )
            row = (await w.execute(stmt)).first()
            if row is None:
                raise DotfileNotFound(f"no dotfile {path!r} in group {access.group.name!r}")
            return to_dotfile(row)

    async def purge_dotfile(self, ref: GroupRef, guard: Guard, path: str) -> int:
        """Hard delete of every row of ``path`` (the active one and deleted history)."""
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            gid = access.group.id
            where = [dotfiles.c.group_id == gid, dotfiles.c.path == path]
            removed = await w.batch_purge(BatchPurger(dotfiles, where))
            if not removed:
                raise DotfileNotFound(f"no dotfile {path!r} in group {access.group.name!r}")
            return removed

    async def batch_update_dotfiles(
        self, ref: GroupRef, guard: Guard, paths: Sequence[str], changes: DotfileChanges
    ) -> int:
        """One UPDATE of the active dotfiles among ``paths``; all or nothing."""
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            gid = access.group.id
            values = self._changes(changes)
            if "data_bytes" in values:
                counts = await self._counts(w, gid, paths)
                size = (
                    counts.bytes - counts.matched_data_bytes + counts.matched * values["data_bytes"]
                )
                self.limits.check(counts.count, size, self._usage(counts.count, counts.bytes))
            where = [
                dotfiles.c.group_id == gid,
                _IS_ACTIVE,
                dotfiles.c.path.in_(list(paths)),
            ]
            return await w.batch_update(BatchUpdater(dotfiles, where, values))

    async def batch_delete_dotfiles(self, ref: GroupRef, guard: Guard, paths: Sequence[str]) -> int:
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            where = [
                dotfiles.c.group_id == access.group.id,
                _IS_ACTIVE,
                dotfiles.c.path.in_(list(paths)),
            ]
            values = {"status": DELETED, "updated_at": utcnow()}
            return await w.batch_update(BatchUpdater(dotfiles, where, values))

    async def batch_purge_dotfiles(self, ref: GroupRef, guard: Guard, paths: Sequence[str]) -> int:
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            where = [dotfiles.c.group_id == access.group.id, dotfiles.c.path.in_(list(paths))]
            return await w.batch_purge(BatchPurger(dotfiles, where))

    async def bulk_create_dotfiles(
        self, ref: GroupRef, guard: Guard, specs: Sequence[DotfileSpec]
    ) -> BulkResult[Dotfile]:
        """Each spec in a savepoint: a duplicate or a limit fails that spec only."""
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            gid = access.group.id
            counts = await self._counts(w, gid, ())
            held = [counts.count, counts.bytes]

            async def one(index: int, spec: DotfileSpec) -> Dotfile:
                path_bytes, data_bytes = _sizes(spec.path, spec.data)
                count, size = held[0] + 1, held[1] + path_bytes + data_bytes
                self.limits.check(count, size, self._usage(held[0], held[1]))
                row = await self._insert(w, gid, spec, path_bytes, data_bytes)
                held[:] = [count, size]
                return to_dotfile(row)

            return await w.partial(specs, one)

    async def bulk_upsert_dotfiles(
        self, ref: GroupRef, guard: Guard, specs: Sequence[DotfileSpec]
    ) -> BulkResult[Dotfile]:
        """Create or replace each spec in a savepoint; a limit fails that spec only."""
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            gid = access.group.id
            counts = await self._counts(w, gid, ())
            params = {"group_id": gid, "paths": [s.path for s in specs]}
            existing = {row.path: row.data_bytes for row in await w.execute(_ACTIVE_SIZES, params)}
            held = [counts.count, counts.bytes]

            async def one(index: int, spec: DotfileSpec) -> Dotfile:
                path_bytes, data_bytes = _sizes(spec.path, spec.data)
                old = existing.get(spec.path)
                if old is None:
                    count, size = held[0] + 1, held[1] + path_bytes + data_bytes
                else:
                    count, size = held[0], held[1] - old + data_bytes
                self.limits.check(count, size, self._usage(held[0], held[1]))
                now = utcnow()
                values = {
                    "group_id": gid,
                    "path": spec.path,
                    "permission": spec.permission,
                    "data": spec.data,
                    "status": ACTIVE,
                    "path_bytes": path_bytes,
                    "data_bytes": data_bytes,
                    "created_at": now,
                    "updated_at": now,
                }
                upsert = Upserter(
                    dotfiles,
                    values,
                    conflict_columns=("group_id", "path"),
                    # The index's own predicate, as text: a bound value would not match it.
                    conflict_where=ACTIVE_ONLY,
                    update_columns=("permission", "data", "data_bytes", "updated_at"),
                )
                row = await w.upsert(upsert)
                held[:] = [count, size]
                existing[spec.path] = data_bytes
                return to_dotfile(row)

            return await w.partial(specs, one)

    async def dotfile_usage(self, ref: GroupRef, guard: Guard) -> Usage:
        async with self._ops.read_ops() as r:
            return (await self._resolve_usage(r, ref, guard))[1]

    # -- domains ----------------------------------------------------------------------------

    async def create_domain(self, name: str) -> Domain:
        async with self._ops.write_ops() as w:
            try:
                row = await w.create(Creator(domains, {"name": name, "created_at": utcnow()}))
            except AlreadyExists:
                raise EntityAlreadyExists(f"domain {name!r} already exists") from None
            return to_domain(row)

    async def ensure_domain(self, name: str) -> None:
        """Create domain ``name`` unless it exists (the default domain, at start)."""
        async with self._ops.write_ops() as w:
            if await w.query(Querier(domains, name)) is None:
                await w.create(Creator(domains, {"name": name, "created_at": utcnow()}))

    async def get_domain(self, name: str, check: Callable[[str], None]) -> Domain:
        async with self._ops.read_statement() as r:
            row = await r.query(Querier(domains, name))
            if row is None:
                raise DomainNotFound(f"no domain {name!r}")
            check(name)
            return to_domain(row)

    async def search_domains(
        self, scope: SearchScope | None, pagination: Pagination
    ) -> Page[Domain]:
        async with self._ops.read_ops() as r:
            spec = BatchQuerier(
                select(domains),
                [Order(domains.c.name)],
                pagination=pagination,
                scope=scope,
                scope_columns=DOMAIN_COLUMNS,
            )
            return (await r.search(spec)).map(to_domain)

    async def purge_domain(self, name: str) -> None:
        """Removes an empty domain (StillReferenced while groups or users are in it)."""
        async with self._ops.write_ops() as w:
            if await w.purge(Purger(domains, name)) is None:
                raise DomainNotFound(f"no domain {name!r}")

    # -- groups -----------------------------------------------------------------------------

    async def _domain_exists(self, ops: ReadOps, name: str) -> None:
        if await ops.query(Querier(domains, name)) is None:
            raise DomainNotFound(f"no domain {name!r}; create it first")

    async def create_group(self, domain: str, name: str, check: Callable[[str], None]) -> Group:
        async with self._ops.write_ops() as w:
            await self._domain_exists(w, domain)
            check(domain)
            values = {
                "id": uuid.uuid4(),
                "domain_name": domain,
                "name": name,
                "created_at": utcnow(),
            }
            try:
                row = await w.create(Creator(groups, values))
            except AlreadyExists:
                raise EntityAlreadyExists(
                    f"group {name!r} already exists in domain {domain!r}"
                ) from None
            return to_group(row)

    async def get_group(self, ref: GroupRef, guard: Guard) -> Group:
        async with self._ops.read_ops() as r:
            return (await self._resolve(r, ref, guard, lock=False)).group

    async def search_groups(self, scope: SearchScope | None, pagination: Pagination) -> Page[Group]:
        async with self._ops.read_ops() as r:
            spec = BatchQuerier(
                select(groups),
                [Order(groups.c.domain_name), Order(groups.c.name)],
                pagination=pagination,
                scope=scope,
                scope_columns=GROUP_COLUMNS,
            )
            return (await r.search(spec)).map(to_group)

    async def rename_group(self, ref: GroupRef, guard: Guard, name: str) -> Group:
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            try:
                row = await w.update(Updater(groups, access.group.id, {"name": name}))
            except AlreadyExists:
                raise EntityAlreadyExists(
                    f"group {name!r} already exists in domain {access.group.domain!r}"
                ) from None
            assert row is not None  # locked above
            return to_group(row)

    async def purge_group(self, ref: GroupRef, guard: Guard) -> Group:
        """Removes the group with its memberships and dotfiles."""
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            await w.purge(Purger(groups, access.group.id))
            return access.group

    async def add_member(self, ref: GroupRef, guard: Guard, user: uuid.UUID | str) -> User:
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            member = to_user(await self._user(w, user))
            if member.domain != access.group.domain:
                raise InvalidInput(
                    f"user {member.email!r} is in domain {member.domain!r}; group "
                    f"{access.group.name!r} is in {access.group.domain!r}"
                )
            values = {"group_id": access.group.id, "user_id": member.id, "created_at": utcnow()}
            try:
                await w.create(Creator(memberships, values))
            except AlreadyExists:
                raise EntityAlreadyExists(
                    f"user {member.email!r} is already a member of {access.group.name!r}"
                ) from None
            return member

    async def remove_member(self, ref: GroupRef, guard: Guard, user: uuid.UUID | str) -> User:
        async with self._ops.write_ops() as w:
            access = await self._resolve(w, ref, guard, lock=True)
            member = to_user(await self._user(w, user))
            if await w.purge(Purger(memberships, (access.group.id, member.id))) is None:
                raise MembershipNotFound(
                    f"user {member.email!r} is not a member of group {access.group.name!r}"
                )
            return member

    async def members(self, ref: GroupRef, guard: Guard, pagination: Pagination) -> Page[User]:
        async with self._ops.read_ops() as r:
            access = await self._resolve(r, ref, guard, lock=False)
            query = select(users).join(memberships, memberships.c.user_id == users.c.id)
            spec = BatchQuerier(
                query,
                [Order(users.c.email)],
                [memberships.c.group_id == access.group.id],
                pagination,
            )
            return (await r.search(spec)).map(to_user)

    # -- users ------------------------------------------------------------------------------

    async def create_user(
        self, email: str, role: Role, domain: str, check: Callable[[str, Role], None]
    ) -> User:
        async with self._ops.write_ops() as w:
            await self._domain_exists(w, domain)
            check(domain, role)
            values = {
                "id": uuid.uuid4(),
                "email": email,
                "role": role.value,
                "domain_name": domain,
                "created_at": utcnow(),
            }
            try:
                row = await w.create(Creator(users, values))
            except AlreadyExists:
                raise EntityAlreadyExists(f"user {email!r} already exists") from None
            return to_user(row)

    async def _user(self, ops: ReadOps, key: uuid.UUID | str, lock: bool = False) -> Row[Any]:
        if isinstance(key, uuid.UUID):
            row = await ops.query(Querier(users, key, lock=lock))
        else:
            stmt = _USER_BY_EMAIL.with_for_update() if lock else _USER_BY_EMAIL
            row = (await ops.execute(stmt, {"email": key})).first()
        if row is None:
            raise UserNotFound(f"no user {key}")
        return row

    async def get_user(self, key: uuid.UUID | str, check: Callable[[User], None]) -> User:
        async with self._ops.read_statement() as r:
            user = to_user(await self._user(r, key))
            check(user)
            return user

    async def search_users(
        self, scope: DomainScope | UserScope | None, pagination: Pagination
    ) -> Page[User]:
        async with self._ops.read_ops() as r:
            spec = BatchQuerier(
                select(users),
                [Order(users.c.email)],
                pagination=pagination,
                scope=scope,
                scope_columns=USER_COLUMNS,
            )
            return (await r.search(spec)).map(to_user)

    async def update_user_role(
        self, key: uuid.UUID | str, role: Role, check: Callable[[User, Role], None]
    ) -> User:
        async with self._ops.write_ops() as w:
            user = to_user(await self._user(w, key, lock=True))
            check(user, role)
            row = await w.update(Updater(users, user.id, {"role": role.value}))
            assert row is not None  # locked above
            return to_user(row)

    async def purge_user(self, key: uuid.UUID | str, check: Callable[[User], None]) -> User:
        async with self._ops.write_ops() as w:
            user = to_user(await self._user(w, key, lock=True))
            check(user)
            await w.purge(Purger(users, user.id))  # memberships go with it (cascade)
            return user
