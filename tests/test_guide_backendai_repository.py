"""The Backend.AI repository guide (``seeds/backendai-repository-guide.txt``), transcribed.

Each operation the guide names is run as it describes, against
``jaseci_like.repository``, on SQLite and PostgreSQL: a repository that delegates to
a DB source, which opens one ``read_ops()`` / ``write_ops()`` unit per call and does
its SQL through specs (Creator, Querier, BatchQuerier, Updater, Purger, their batch
and bulk forms, dependent creators), with ``SearchScope`` frozen dataclasses turned
into conditions. Where our API differs from the guide's (a spec returns the row
itself, not ``result.row``; ``BatchQuerier`` carries its ``select``), the test says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NewType

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import (
    CheckConstraint,
    Column,
    ColumnElement,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    event,
    exists,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.loop import RuntimeLoop
from jaseci_like.repository import (
    UNSET,
    AlreadyExists,
    BatchPurger,
    BatchQuerier,
    BatchUpdater,
    BulkCreator,
    BulkResult,
    BulkUpserter,
    CheckViolation,
    Creator,
    CursorPagination,
    DbOps,
    DependentCreatorSpec,
    DomainScope,
    EmptySearchScope,
    FailureReason,
    GroupScope,
    InvalidQuery,
    OffsetPagination,
    OperationMetrics,
    OptionalState,
    Order,
    Page,
    Pagination,
    Purger,
    Querier,
    RepositoryError,
    Resilience,
    RetryPolicy,
    ScopeColumns,
    SearchScope,
    StillReferenced,
    Updater,
    UserScope,
    UtcDateTime,
    changed,
    resilient,
    utcnow,
)
from tests.group_config_fixtures import BACKENDS, BeginCounter, make_engine, sqlite_url
from tests.test_repository import Db

# -- types (repositories/{domain}/types.py) ---------------------------------------------------

ProjectId = NewType("ProjectId", uuid.UUID)
UserId = NewType("UserId", uuid.UUID)
ACTIVE, DELETED = "active", "deleted"

meta = MetaData()
projects = Table(
    "gd_projects",
    meta,
    Column("id", Uuid, primary_key=True, default=uuid.uuid4),
    Column("domain_name", String(20), nullable=False),
    Column("name", String(32), nullable=False),
    Column("status", String(10), nullable=False, default=ACTIVE),
    Column("quota", Integer, nullable=False),
    Column("description", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    UniqueConstraint("domain_name", "name", name="uq_gd_projects_domain_name"),
    CheckConstraint("quota >= 0", name="ck_gd_projects_quota"),
)
members = Table(
    "gd_members",
    meta,
    Column("project_id", Uuid, ForeignKey("gd_projects.id"), primary_key=True),
    Column("user_id", Uuid, primary_key=True),
    Column("role", String(10), nullable=False),
)
#: Domain scope -> domain_name; project scope -> the project's id; user scope -> membership.
PROJECT_SCOPE = ScopeColumns(
    domain=projects.c.domain_name,
    group=projects.c.id,
    user=lambda user_id: exists().where(
        members.c.project_id == projects.c.id, members.c.user_id == user_id
    ),
)
ORDERS = (Order(projects.c.name), Order(projects.c.id))


@dataclass(frozen=True)
class ActiveProjectSearchScope:
    """A domain's active projects: a frozen dataclass with ``to_conditions()``, the
    guide's SearchScope pattern (like its ``GroupSearchScope``)."""

    domain_name: str

    def to_conditions(self, columns: ScopeColumns) -> list[ColumnElement[bool]]:
        return [*DomainScope(self.domain_name).to_conditions(columns), projects.c.status == ACTIVE]


@dataclass(frozen=True)
class ProjectData:
    id: ProjectId
    domain_name: str
    name: str
    status: str
    quota: int
    description: str | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> ProjectData:
        return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class ProjectCreatorSpec:
    domain_name: str
    name: str
    quota: Any  # Any: the tests also hand the database values it must refuse
    description: str | None = None

    def build_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ProjectUpdaterSpec:
    """The guide's Updater with OptionalState: an UNSET field is not written."""

    name: OptionalState[str] = UNSET
    quota: OptionalState[int] = UNSET
    description: OptionalState[str | None] = UNSET

    def values(self) -> dict[str, Any]:
        return changed(dataclasses.asdict(self))


@dataclass(frozen=True)
class MemberCreatorSpec:
    """A child row that needs its parent's id, known only once the parent exists."""

    user_id: UserId
    role: str = "member"

    @property
    def table(self) -> Table:
        return members

    def build_row(self, dependency: ProjectId) -> dict[str, Any]:
        return {"project_id": dependency, "user_id": self.user_id, "role": self.role}


class ProjectNotFound(RepositoryError):
    code = "project_not_found"
    http_status = 404


# -- DB source (repositories/{domain}/db_source/db_source.py) ---------------------------------


class ProjectDBSource:
    """All SQL, one transaction per public call, only through the ops wrapper."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._ops = DbOps(engine)

    async def create(self, spec: ProjectCreatorSpec) -> ProjectData:
        async with self._ops.write_ops() as w:
            row = await w.create(Creator(projects, spec.build_row()))  # guide: result.row
            return ProjectData.from_row(row)

    async def get(self, project_id: ProjectId, scope: SearchScope | None = None) -> ProjectData:
        async with self._ops.read_ops() as r:
            row = await r.query(Querier(projects, project_id, scope, PROJECT_SCOPE))
        if row is None:
            raise ProjectNotFound(f"project {project_id} not found")
        return ProjectData.from_row(row)

    async def search(
        self,
        scope: SearchScope | None,
        filters: Sequence[ColumnElement[bool]],
        page: Pagination,
    ) -> Page[ProjectData]:
        spec = BatchQuerier(select(projects), ORDERS, filters, page, scope, PROJECT_SCOPE)
        async with self._ops.read_ops() as r:
            return (await r.search(spec)).map(ProjectData.from_row)

    async def scoped_search(
        self, querier: BatchQuerier, scopes: Sequence[SearchScope]
    ) -> Page[ProjectData]:
        async with self._ops.read_ops() as r:
            return (await r.batch_query_with_scopes(querier, scopes)).map(ProjectData.from_row)

    async def global_search(self, querier: BatchQuerier) -> Page[ProjectData]:
        async with self._ops.read_ops() as r:
            return (await r.batch_query_in_global(querier)).map(ProjectData.from_row)

    async def update(self, project_id: ProjectId, spec: ProjectUpdaterSpec) -> ProjectData:
        async with self._ops.write_ops() as w:
            row = await w.update(Updater(projects, project_id, spec.values()))
        if row is None:
            raise ProjectNotFound(f"project {project_id} not found")
        return ProjectData.from_row(row)

    async def delete(self, project_id: ProjectId) -> ProjectData:
        """Soft delete: the status changes, the row stays."""
        async with self._ops.write_ops() as w:
            row = await w.update(Updater(projects, project_id, {"status": DELETED}))
        if row is None:
            raise ProjectNotFound(f"project {project_id} not found")
        return ProjectData.from_row(row)

    async def purge(self, project_id: ProjectId) -> ProjectData:
        """Hard delete: the row is gone for good."""
        async with self._ops.write_ops() as w:
            row = await w.purge(Purger(projects, project_id))
        if row is None:
            raise ProjectNotFound(f"project {project_id} not found")
        return ProjectData.from_row(row)

    async def batch_update(self, ids: Sequence[ProjectId], spec: ProjectUpdaterSpec) -> int:
        async with self._ops.write_ops() as w:
            return await w.batch_update(
                BatchUpdater(projects, [projects.c.id.in_(ids)], spec.values())
            )

    async def batch_delete(self, ids: Sequence[ProjectId]) -> int:
        where = [projects.c.id.in_(ids), projects.c.status == ACTIVE]
        async with self._ops.write_ops() as w:
            return await w.batch_update(BatchUpdater(projects, where, {"status": DELETED}))

    async def batch_purge(self, ids: Sequence[ProjectId]) -> int:
        async with self._ops.write_ops() as w:
            return await w.batch_purge(BatchPurger(projects, [projects.c.id.in_(ids)]))

    async def bulk_create(self, specs: Sequence[ProjectCreatorSpec]) -> BulkResult[ProjectData]:
        async with self._ops.write_ops() as w:
            result = await w.bulk_create(BulkCreator(projects, [s.build_row() for s in specs]))
            return result.map(ProjectData.from_row)

    async def bulk_upsert(self, specs: Sequence[ProjectCreatorSpec]) -> BulkResult[ProjectData]:
        upsert = BulkUpserter(
            projects,
            [s.build_row() for s in specs],
            conflict_columns=("domain_name", "name"),
            update_columns=("quota", "description"),
        )
        async with self._ops.write_ops() as w:
            return (await w.bulk_upsert(upsert)).map(ProjectData.from_row)

    async def create_with_members(
        self, spec: ProjectCreatorSpec, children: Sequence[DependentCreatorSpec[ProjectId]]
    ) -> tuple[ProjectData, list[UserId]]:
        """Parent, then the children built from its generated id, in one unit."""
        async with self._ops.write_ops() as w:
            parent = await w.create(Creator(projects, spec.build_row()))
            built = await w.bulk_create_dependent(children, ProjectId(parent.id))
            if built.failures:
                raise built.failures[0].error  # the children are all or nothing here
            return ProjectData.from_row(parent), [row.user_id for row in built.results]

    async def replace_members(
        self,
        project_id: ProjectId,
        spec: ProjectUpdaterSpec,
        children: Sequence[DependentCreatorSpec[ProjectId]],
    ) -> list[UserId]:
        """Update the parent, purge the old children, create the new: one unit."""
        async with self._ops.write_ops() as w:
            if await w.update(Updater(projects, project_id, spec.values())) is None:
                raise ProjectNotFound(f"project {project_id} not found")
            await w.batch_purge(BatchPurger(members, [members.c.project_id == project_id]))
            built = await w.bulk_create_dependent(children, project_id)
            if built.failures:
                raise built.failures[0].error
            return [row.user_id for row in built.results]


# -- repository (repositories/{domain}/repository.py) -----------------------------------------


class ProjectRepository:
    """The public interface: standard names, no prefix; each delegates to the DB
    source through the resilience policy (transient errors retried, all counted)."""

    def __init__(self, engine: AsyncEngine, registry: CollectorRegistry) -> None:
        self._db_source = ProjectDBSource(engine)
        self.metrics = OperationMetrics("guide", registry)
        self.resilience = Resilience(self.metrics, RetryPolicy(attempts=3, base_delay=0.001))

    @resilient("create")
    async def create(self, data: ProjectCreatorSpec) -> ProjectData:
        return await self._db_source.create(data)

    @resilient("get")
    async def get(self, id: ProjectId, scope: SearchScope | None = None) -> ProjectData:
        return await self._db_source.get(id, scope)

    @resilient("search")
    async def search(
        self,
        scope: SearchScope | None,
        filters: Sequence[ColumnElement[bool]],
        pagination: Pagination,
    ) -> Page[ProjectData]:
        return await self._db_source.search(scope, filters, pagination)

    @resilient("update")
    async def update(self, id: ProjectId, data: ProjectUpdaterSpec) -> ProjectData:
        return await self._db_source.update(id, data)

    @resilient("delete")
    async def delete(self, id: ProjectId) -> ProjectData:
        return await self._db_source.delete(id)

    @resilient("purge")
    async def purge(self, id: ProjectId) -> ProjectData:
        return await self._db_source.purge(id)

    @resilient("batch_update")
    async def batch_update(self, ids: Sequence[ProjectId], data: ProjectUpdaterSpec) -> int:
        return await self._db_source.batch_update(ids, data)

    @resilient("batch_delete")
    async def batch_delete(self, ids: Sequence[ProjectId]) -> int:
        return await self._db_source.batch_delete(ids)

    @resilient("batch_purge")
    async def batch_purge(self, ids: Sequence[ProjectId]) -> int:
        return await self._db_source.batch_purge(ids)

    @resilient("bulk_create")
    async def bulk_create(self, specs: Sequence[ProjectCreatorSpec]) -> BulkResult[ProjectData]:
        return await self._db_source.bulk_create(specs)

    @resilient("bulk_upsert")
    async def bulk_upsert(self, specs: Sequence[ProjectCreatorSpec]) -> BulkResult[ProjectData]:
        return await self._db_source.bulk_upsert(specs)


# -- fixtures (the guide's with_tables) -------------------------------------------------------


@dataclass
class Guide:
    db: Db
    repo: ProjectRepository
    source: ProjectDBSource

    @property
    def postgres(self) -> bool:
        return self.db.backend == "postgres"


@pytest.fixture(params=BACKENDS)
def with_tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Guide]:
    """A real database with the guide's tables, on each backend."""
    backend: str = request.param
    url = sqlite_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("postgres_url")
    loop = RuntimeLoop("guide-test")
    engine = make_engine(url)

    async def create() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)

    loop.run(create())
    try:
        repo = ProjectRepository(engine, CollectorRegistry())
        yield Guide(Db(backend, url, loop, engine, DbOps(engine)), repo, repo._db_source)
    finally:
        loop.run(engine.dispose())
        loop.stop()


def spec(name: str, domain: str = "d1", quota: Any = 10) -> ProjectCreatorSpec:
    return ProjectCreatorSpec(domain, name, quota)


def _names(page: Page[ProjectData]) -> list[str]:
    return [p.name for p in page.items]


def _rows(g: Guide) -> list[tuple[str, str, int]]:
    async def read() -> list[tuple[str, str, int]]:
        async with g.db.ops.read_ops() as r:
            stmt = select(projects.c.name, projects.c.status, projects.c.quota)
            return [tuple(row) for row in await r.execute(stmt.order_by(projects.c.name))]

    return g.db.run(read())


class StatementLog:
    """The UPDATE and DELETE statements an engine sends (to see "one statement")."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.writes: list[str] = []
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "DELETE")):
            self.writes.append(statement)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


# -- standard operations ----------------------------------------------------------------------


def test_the_six_standard_operations(with_tables: Guide) -> None:
    g = with_tables
    repo = g.repo

    async def scenario() -> None:
        # create - create new entity
        alpha = await repo.create(spec("alpha"))
        assert (alpha.status, alpha.quota, alpha.description) == (ACTIVE, 10, None)
        assert isinstance(alpha.id, uuid.UUID) and alpha.created_at.tzinfo is dt.UTC
        beta = await repo.create(spec("beta", "d2", 5))
        with pytest.raises(AlreadyExists):
            await repo.create(spec("alpha"))
        # get - retrieve a single entity by id, within a scope when given one
        assert await repo.get(alpha.id) == alpha
        assert (await repo.get(alpha.id, DomainScope("d1"))).name == "alpha"
        with pytest.raises(ProjectNotFound):
            await repo.get(alpha.id, DomainScope("d2"))
        with pytest.raises(ProjectNotFound):
            await repo.get(ProjectId(uuid.uuid4()))
        # search - query with scope, filters and pagination
        for n in range(3):
            await repo.create(spec(f"gamma{n}", quota=n))
        page = await repo.search(DomainScope("d1"), [projects.c.quota < 5], OffsetPagination(2))
        assert (_names(page), page.total_count, page.has_next) == (["gamma0", "gamma1"], 3, True)
        rest = await repo.search(DomainScope("d1"), [], CursorPagination(3, after=None))
        assert _names(rest) == ["alpha", "gamma0", "gamma1"] and rest.next_cursor is not None
        last = await repo.search(DomainScope("d1"), [], CursorPagination(3, after=rest.next_cursor))
        assert (_names(last), last.has_next) == (["gamma2"], False)
        # update - only the fields given (OptionalState); None is a value, UNSET is not
        noted = await repo.update(alpha.id, ProjectUpdaterSpec(description="first"))
        assert (noted.quota, noted.description) == (10, "first")
        bumped = await repo.update(alpha.id, ProjectUpdaterSpec(quota=20))
        assert (bumped.quota, bumped.description) == (20, "first")
        cleared = await repo.update(alpha.id, ProjectUpdaterSpec(description=None))
        assert cleared.description is None and cleared.quota == 20
        with pytest.raises(ProjectNotFound):
            await repo.update(ProjectId(uuid.uuid4()), ProjectUpdaterSpec(quota=1))
        # delete - soft: a status change, the row stays readable
        gone = await repo.delete(beta.id)
        assert gone.status == DELETED and (await repo.get(beta.id)).status == DELETED
        # purge - hard: the row is removed
        assert (await repo.purge(beta.id)).id == beta.id
        with pytest.raises(ProjectNotFound):
            await repo.get(beta.id)
        with pytest.raises(ProjectNotFound):
            await repo.purge(beta.id)

    g.db.run(scenario())
    assert _rows(g) == [
        ("alpha", ACTIVE, 20),
        ("gamma0", ACTIVE, 0),
        ("gamma1", ACTIVE, 1),
        ("gamma2", ACTIVE, 2),
    ]
    # Every call counted by its standard name and outcome.
    value = repo.metrics.value
    assert value("operations_total", operation="create", outcome="ok") == 5
    assert value("operations_total", operation="create", outcome="already_exists") == 1
    assert value("operations_total", operation="get", outcome="project_not_found") == 3
    assert value("operations_total", operation="purge", outcome="ok") == 1


def test_batch_operations_are_one_atomic_statement_returning_the_count(with_tables: Guide) -> None:
    g = with_tables
    repo = g.repo
    log = StatementLog(g.db.engine)

    async def scenario() -> None:
        made = [await repo.create(spec(f"p{n}", quota=n)) for n in range(5)]
        ids = [p.id for p in made]
        log.writes.clear()
        assert await repo.batch_update(ids[:3], ProjectUpdaterSpec(quota=7)) == 3
        assert len(log.writes) == 1
        # All or nothing: two rows given one name break the unique key, so none changes.
        log.writes.clear()
        with pytest.raises(AlreadyExists):
            await repo.batch_update(ids[3:], ProjectUpdaterSpec(name="same", quota=9))
        assert len(log.writes) == 1
        with pytest.raises(CheckViolation):  # for the whole batch
            await repo.batch_update(ids, ProjectUpdaterSpec(quota=-1))
        # batch_delete (soft): the count of rows it changed, once
        assert await repo.batch_delete(ids[:2]) == 2
        assert await repo.batch_delete(ids[:2]) == 0
        # batch_purge: a project still referenced stops the whole statement
        await g.source.replace_members(ids[4], ProjectUpdaterSpec(), [MemberCreatorSpec(uid())])
        with pytest.raises(StillReferenced):
            await repo.batch_purge(ids[3:])
        log.writes.clear()
        assert await repo.batch_purge(ids[:4]) == 4
        assert len(log.writes) == 1
        assert await repo.batch_purge(ids[:4]) == 0

    try:
        g.db.run(scenario())
    finally:
        log.close()
    assert _rows(g) == [("p4", ACTIVE, 4)]


def uid() -> UserId:
    return UserId(uuid.uuid4())


def test_bulk_operations_are_partial_with_successes_and_errors(with_tables: Guide) -> None:
    g = with_tables
    repo = g.repo
    too_long = "n" * 33  # name is VARCHAR(32): PostgreSQL refuses it, SQLite stores it

    async def scenario() -> None:
        created = await repo.bulk_create(
            [
                spec("a"),
                spec("a"),  # duplicate (domain, name)
                spec("b", quota=None),  # NOT NULL
                spec("c", quota=-1),  # CHECK
                spec(too_long),
                spec("d"),
            ]
        )
        assert [i for i, _ in created.succeeded] == ([0, 5] if g.postgres else [0, 4, 5])
        expected = [
            (1, FailureReason.UNIQUE),
            (2, FailureReason.NOT_NULL),
            (3, FailureReason.CHECK),
        ]
        if g.postgres:
            expected.append((4, FailureReason.DATA))
        assert [(f.index, f.reason) for f in created.failures] == expected
        assert all(too_long not in f.message for f in created.failures)

        upserted = await repo.bulk_upsert(
            [
                ProjectCreatorSpec("d1", "a", 50, "updated"),  # exists: updated
                spec("e", quota=3),  # new: inserted
                spec("d", quota=-5),  # exists, the update breaks CHECK
                spec("f", quota="many"),  # not an integer
            ]
        )
        stored = [(i, p.name, p.quota) for i, p in upserted.succeeded]
        failed = [(f.index, f.reason) for f in upserted.failures]
        assert upserted.results[0].description == "updated"
        if g.postgres:
            assert stored == [(0, "a", 50), (1, "e", 3)]
            assert failed == [(2, FailureReason.CHECK), (3, FailureReason.DATA)]
        else:  # SQLite keeps a text in an INTEGER column (type affinity)
            assert stored == [(0, "a", 50), (1, "e", 3), (3, "f", "many")]
            assert failed == [(2, FailureReason.CHECK)]

    g.db.run(scenario())
    rows = {name: quota for name, _, quota in _rows(g)}
    assert rows.pop("a") == 50 and rows.pop("d") == 10 and rows.pop("e") == 3
    assert set(rows) == (set() if g.postgres else {too_long, "f"})


# -- SearchScope ------------------------------------------------------------------------------


def test_search_scopes_are_frozen_dataclasses_turned_into_conditions(with_tables: Guide) -> None:
    g = with_tables
    repo = g.repo
    alice, bob = uid(), uid()

    scope = DomainScope("d1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        scope.domain = "d2"  # type: ignore[misc]
    [condition] = scope.to_conditions(PROJECT_SCOPE)
    assert str(condition) == "gd_projects.domain_name = :domain_name_1"
    assert len(ActiveProjectSearchScope("d1").to_conditions(PROJECT_SCOPE)) == 2
    with pytest.raises(InvalidQuery):  # a scope that cannot apply never widens the query
        DomainScope("d1").to_conditions(ScopeColumns())

    async def scenario() -> None:
        one, _ = await g.source.create_with_members(spec("one"), [MemberCreatorSpec(alice)])
        two, _ = await g.source.create_with_members(
            spec("two"), [MemberCreatorSpec(alice), MemberCreatorSpec(bob)]
        )
        await repo.create(spec("three", "d2"))
        await repo.delete(two.id)
        everything = OffsetPagination(50)
        # Domain scope -> domain_name filter
        assert _names(await repo.search(DomainScope("d1"), [], everything)) == ["one", "two"]
        assert _names(await repo.search(ActiveProjectSearchScope("d1"), [], everything)) == ["one"]
        # Project scope -> project id filter
        assert _names(await repo.search(GroupScope(two.id), [], everything)) == ["two"]
        # User scope -> the user's projects
        assert _names(await repo.search(UserScope(alice), [], everything)) == ["one", "two"]
        assert _names(await repo.search(UserScope(bob), [], everything)) == ["two"]
        assert (await repo.get(one.id, UserScope(alice))).id == one.id
        with pytest.raises(ProjectNotFound):
            await repo.get(one.id, UserScope(bob))

    g.db.run(scenario())


def test_scoped_reads_by_default_and_global_reads_by_name(with_tables: Guide) -> None:
    g = with_tables
    querier = BatchQuerier(select(projects), ORDERS, scope_columns=PROJECT_SCOPE)

    async def scenario() -> None:
        for name, domain in (("a", "d1"), ("b", "d2"), ("c", "d3")):
            await g.repo.create(spec(name, domain))
        # The scopes of one call are combined with OR.
        both = await g.source.scoped_search(querier, [DomainScope("d1"), DomainScope("d3")])
        assert (_names(both), both.total_count) == (["a", "c"], 2)
        one = await g.source.scoped_search(querier, [ActiveProjectSearchScope("d2")])
        assert _names(one) == ["b"]
        # No scope is no query: it would be a global one in disguise.
        with pytest.raises(EmptySearchScope) as empty:
            await g.source.scoped_search(querier, [])
        assert empty.value.http_status == 400 and empty.value.code == "empty_search_scope"
        # A global read is asked for by name, and takes no scope.
        assert _names(await g.source.global_search(querier)) == ["a", "b", "c"]
        scoped = dataclasses.replace(querier, scope=DomainScope("d1"))
        with pytest.raises(InvalidQuery):
            await g.source.global_search(scoped)

    g.db.run(scenario())


# -- the DB Ops wrapper -----------------------------------------------------------------------


class FooNotFound(RepositoryError):
    code = "foo_not_found"
    http_status = 404


class FooDBSource:
    """The guide's "DB Ops Wrapper" snippet, with our names."""

    def __init__(self, db: AsyncEngine) -> None:
        self._ops = DbOps(db)

    async def foo(self, foo_id: ProjectId) -> ProjectData:
        async with self._ops.read_ops() as r:
            result = await r.query(Querier(projects, foo_id))
            if result is None:
                raise FooNotFound()
            return ProjectData.from_row(result)

    async def create(self, spec: ProjectCreatorSpec) -> ProjectData:
        async with self._ops.write_ops() as w:
            result = await w.create(Creator(projects, spec.build_row()))
            return ProjectData.from_row(result)

    async def isolation(self) -> tuple[str, str]:
        async with self._ops.read_ops() as r:
            read = (await r.execute(text("SHOW transaction_isolation"))).scalar_one()
        async with self._ops.write_ops() as w:
            write = (await w.execute(text("SHOW transaction_isolation"))).scalar_one()
        return read, write


def test_read_ops_and_write_ops_as_in_the_db_ops_wrapper_snippet(with_tables: Guide) -> None:
    g = with_tables
    source = FooDBSource(g.db.engine)
    counter = BeginCounter(g.db.engine)

    async def scenario() -> None:
        made = await source.create(spec("foo"))
        assert counter.count == 1
        assert await source.foo(made.id) == made
        assert counter.count == 2, "one transaction per call"
        with pytest.raises(FooNotFound):
            await source.foo(ProjectId(uuid.uuid4()))
        async with g.db.ops.read_ops() as r:
            assert not hasattr(r, "create") and not hasattr(r, "batch_purge")
        if g.postgres:
            assert await source.isolation() == ("read committed", "read committed")

    try:
        g.db.run(scenario())
    finally:
        counter.close()


def test_a_parent_and_its_dependent_children_in_one_write_ops(with_tables: Guide) -> None:
    g = with_tables
    alice, bob, carol = uid(), uid(), uid()

    def member_ids() -> set[uuid.UUID]:
        async def read() -> set[uuid.UUID]:
            async with g.db.ops.read_ops() as r:
                return {row.user_id for row in await r.execute(select(members))}

        return g.db.run(read())

    async def scenario() -> ProjectData:
        children: list[DependentCreatorSpec[ProjectId]] = [
            MemberCreatorSpec(alice, "owner"),
            MemberCreatorSpec(bob),
        ]
        parent, made = await g.source.create_with_members(spec("team"), children)
        assert made == [alice, bob]
        async with g.db.ops.read_ops() as r:
            rows = list(await r.execute(select(members).order_by(members.c.role)))
        assert {row.project_id for row in rows} == {parent.id}, "built from the parent's new id"
        # A child that cannot be created (a duplicate) rolls the whole unit back.
        with pytest.raises(AlreadyExists):
            await g.source.create_with_members(
                spec("other"), [MemberCreatorSpec(carol), MemberCreatorSpec(carol)]
            )
        return parent

    parent = g.db.run(scenario())
    assert [name for name, _, _ in _rows(g)] == ["team"]

    # Replacing the children: update the parent, purge the old ones, create the new.
    async def replace(children: Sequence[MemberCreatorSpec]) -> list[UserId]:
        return await g.source.replace_members(parent.id, ProjectUpdaterSpec(quota=99), children)

    with pytest.raises(AlreadyExists):
        g.db.run(replace([MemberCreatorSpec(carol), MemberCreatorSpec(carol)]))
    assert member_ids() == {alice, bob} and _rows(g) == [("team", ACTIVE, 10)]
    assert g.db.run(replace([MemberCreatorSpec(carol)])) == [carol]
    assert member_ids() == {carol} and _rows(g) == [("team", ACTIVE, 99)]
