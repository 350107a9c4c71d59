"""The generic repository utilities (``jaseci_like.repository``) on SQLite and PostgreSQL,
against a small schema of their own: specs, errors, pages, scopes, transactions, retries."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    cast,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
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
    ConstraintViolation,
    Creator,
    CursorPagination,
    DbOps,
    DomainScope,
    FailureReason,
    GroupScope,
    InvalidQuery,
    InvalidValue,
    NotNullViolation,
    OffsetPagination,
    OperationMetrics,
    Order,
    Purger,
    Querier,
    ReferenceNotFound,
    RepositoryError,
    Resilience,
    RetryPolicy,
    ScopeColumns,
    StillReferenced,
    Updater,
    UserScope,
    UtcDateTime,
    is_connection_lost,
    is_transient,
    utcnow,
)
from tests.group_config_fixtures import BACKENDS, BeginCounter, make_engine, sqlite_url

T = TypeVar("T")
meta = MetaData()
teams = Table(
    "rt_teams",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("domain", String(20), nullable=False),
    Column("name", String(40), nullable=False, unique=True),
    Column("score", Integer, nullable=False),
    Column("note", String(40), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)
players = Table(
    "rt_players",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("team_id", Integer, ForeignKey("rt_teams.id"), nullable=False),
    Column("name", String(40), nullable=False),
    CheckConstraint("length(name) > 0", name="ck_rt_players_name"),
)
TEAM_SCOPE = ScopeColumns(
    domain=teams.c.domain,
    user=lambda player_id: exists().where(
        players.c.team_id == teams.c.id, players.c.id == player_id
    ),
)


@dataclass
class Db:
    backend: str
    url: str
    loop: RuntimeLoop
    engine: AsyncEngine
    ops: DbOps

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro, timeout=60)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    backend: str = request.param
    url = sqlite_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("postgres_url")
    loop = RuntimeLoop("repo-test")
    engine = make_engine(url)

    async def create() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)

    loop.run(create())
    try:
        yield Db(backend, url, loop, engine, DbOps(engine))
    finally:
        loop.run(engine.dispose())
        loop.stop()


def team(n: int, domain: str = "a", score: int | None = None) -> dict[str, Any]:
    return {
        "id": n,
        "domain": domain,
        "name": f"team{n:02}",
        "score": n % 3 if score is None else score,
        "note": None,
        "created_at": utcnow(),
    }


async def _seed(db: Db, count: int) -> None:
    async with db.ops.write_ops() as w:
        result = await w.bulk_create(BulkCreator(teams, [team(n) for n in range(count)]))
        assert not result.failures


async def _all_teams(db: Db) -> list[tuple[Any, ...]]:
    async with db.ops.read_ops() as r:
        return [tuple(row) for row in await r.execute(select(teams).order_by(teams.c.id))]


# -- single-row specs -------------------------------------------------------------------------


def test_create_query_update_purge_within_a_scope(db: Db) -> None:
    async def scenario() -> None:
        async with db.ops.write_ops() as w:
            row = await w.create(Creator(teams, team(1, "a")))
            await w.create(Creator(teams, team(2, "b")))
        assert row.name == "team01"
        assert row.created_at.tzinfo is dt.UTC
        async with db.ops.read_ops() as r:
            assert (await r.query(Querier(teams, 1))) is not None
            in_b = Querier(teams, 1, scope=DomainScope("b"), scope_columns=TEAM_SCOPE)
            assert await r.query(in_b) is None, "the scope must hide a row of another domain"
        async with db.ops.write_ops() as w:
            updated = await w.update(Updater(teams, 1, {"score": 42, "note": UNSET}))
            assert updated is not None and (updated.score, updated.note) == (42, None)
            noted = await w.update(Updater(teams, 1, {"note": "n", "score": UNSET}))
            assert noted is not None and (noted.score, noted.note) == (42, "n")
            cleared = await w.update(Updater(teams, 1, {"note": None}))
            assert cleared is not None and cleared.note is None  # None is a value, UNSET is not
            same = await w.update(Updater(teams, 1, {"note": UNSET}))
            assert same is not None and same.score == 42
            outside = Updater(teams, 2, {"score": 1}, DomainScope("a"), TEAM_SCOPE)
            assert await w.update(outside) is None
            assert await w.update(Updater(teams, 99, {"score": 1})) is None
            purged = await w.purge(Purger(teams, 2))
            assert purged is not None and purged.id == 2
            assert await w.purge(Purger(teams, 2)) is None

    db.run(scenario())
    assert [row[0] for row in db.run(_all_teams(db))] == [1]


def test_constraint_violations_become_domain_errors_and_roll_back(db: Db) -> None:
    async def in_one_transaction(spec: Any) -> None:
        async with db.ops.write_ops() as w:
            await w.create(Creator(teams, team(50)))  # must be rolled back too
            await spec(w)

    async def attempt(spec: Any, expected: type[Exception]) -> None:
        with pytest.raises(expected) as caught:
            await in_one_transaction(spec)
        assert isinstance(caught.value.__cause__, IntegrityError)

    async def scenario() -> None:
        await _seed(db, 2)
        await attempt(
            lambda w: w.create(Creator(teams, {**team(9), "name": "team00"})), AlreadyExists
        )
        player = {"id": 1, "team_id": 404, "name": "p"}
        await attempt(lambda w: w.create(Creator(players, player)), ReferenceNotFound)
        empty = {"id": 1, "team_id": 0, "name": ""}
        await attempt(lambda w: w.create(Creator(players, empty)), ConstraintViolation)
        async with db.ops.write_ops() as w:
            await w.create(Creator(players, {"id": 1, "team_id": 0, "name": "p"}))
        await attempt(lambda w: w.purge(Purger(teams, 0)), StillReferenced)

    db.run(scenario())
    assert [row[0] for row in db.run(_all_teams(db))] == [0, 1]
    assert AlreadyExists.http_status == 409 and ReferenceNotFound.http_status == 404


# -- batch and bulk -------------------------------------------------------------------------


def test_batch_statements_are_atomic_and_return_counts(db: Db) -> None:
    async def scenario() -> None:
        await _seed(db, 6)
        async with db.ops.write_ops() as w:
            changed = await w.batch_update(
                BatchUpdater(teams, [teams.c.id < 4], {"score": 7, "note": UNSET})
            )
            assert changed == 4
        before = await _all_teams(db)
        # Two rows given one unique name: the statement fails as a whole.
        with pytest.raises(AlreadyExists):
            async with db.ops.write_ops() as w:
                await w.batch_update(BatchUpdater(teams, [teams.c.id >= 4], {"name": "same"}))
        assert await _all_teams(db) == before
        with pytest.raises(InvalidQuery):
            async with db.ops.write_ops() as w:
                await w.batch_purge(BatchPurger(teams, []))
        async with db.ops.write_ops() as w:
            assert await w.batch_purge(BatchPurger(teams, [teams.c.score == 7])) == 4

    db.run(scenario())
    assert [row[0] for row in db.run(_all_teams(db))] == [4, 5]


def test_bulk_specs_report_failures_by_index_and_keep_the_rest(db: Db) -> None:
    async def scenario() -> None:
        async with db.ops.write_ops() as w:
            rows = [team(0), {**team(1), "name": "team00"}, team(2), team(0)]
            result = await w.bulk_create(BulkCreator(teams, rows))
            assert [i for i, _ in result.succeeded] == [0, 2]
            assert [(f.index, type(f.error)) for f in result.failures] == [
                (1, AlreadyExists),
                (3, AlreadyExists),
            ]
            upsert = BulkUpserter(
                teams,
                [{**team(0), "score": 9}, team(5), {**team(6), "name": "team02"}],
                conflict_columns=("id",),
                update_columns=("score",),
            )
            upserted = await w.bulk_upsert(upsert)
            assert [i for i, _ in upserted.succeeded] == [0, 1]
            assert [f.index for f in upserted.failures] == [2]

    db.run(scenario())
    rows = db.run(_all_teams(db))
    assert [(row[0], row[3]) for row in rows] == [(0, 9), (2, 2), (5, 2)]


NAIVE = dt.datetime(2030, 1, 1)


def _failed(result: BulkResult[Any]) -> list[tuple[int, FailureReason]]:
    return [(f.index, f.reason) for f in result.failures]


def _assert_masked(result: BulkResult[Any], *values: str) -> None:
    """Each failure is a typed error whose text names none of ``values`` and which
    carries no driver error (its text holds the row's parameters)."""
    for failure in result.failures:
        assert isinstance(failure.error, RepositoryError), failure
        assert failure.code == failure.error.code and failure.message == str(failure.error)
        assert failure.error.__cause__ is None and failure.error.__context__ is None
        assert failure.error.__traceback__ is None
        for value in values:
            assert value not in failure.message, (value, failure.message)


def test_bulk_rows_failing_any_constraint_or_type_fail_alone_with_a_typed_reason(db: Db) -> None:
    """The same rows give the same successes and the same typed failures on SQLite and
    PostgreSQL: every constraint both enforce, and the values both refuse to store."""
    too_big = 2**70

    async def scenario() -> None:
        async with db.ops.write_ops() as w:
            created = await w.bulk_create(
                BulkCreator(
                    teams,
                    [
                        team(0),
                        {**team(1), "score": None},
                        team(2),
                        {**team(3), "name": "team00"},
                        {**team(4), "score": too_big},
                        {**team(5), "note": "lone \ud800 surrogate"},
                        {**team(6), "id": "six"},
                        {**team(7), "created_at": NAIVE},
                        team(8),
                        {**team(9), "note": ["a", "list"]},
                    ],
                )
            )
            assert [i for i, _ in created.succeeded] == [0, 2, 8]
            assert [row.id for row in created.results] == [0, 2, 8]
            assert _failed(created) == [
                (1, FailureReason.NOT_NULL),
                (3, FailureReason.UNIQUE),
                *[(i, FailureReason.DATA) for i in (4, 5, 6, 7, 9)],
            ]
            assert [type(f.error) for f in created.failures] == [
                NotNullViolation,
                AlreadyExists,
                *[InvalidValue] * 5,
            ]
            assert created.failures[2].code == "invalid_value"
            _assert_masked(created, str(too_big), "six", "surrogate", "2030", "list")

            members = await w.bulk_create(
                BulkCreator(
                    players,
                    [
                        {"id": 1, "team_id": 0, "name": "p"},
                        {"id": 2, "team_id": 0, "name": ""},
                        {"id": 3, "team_id": 404, "name": "q"},
                        {"id": 4, "team_id": 2, "name": "r"},
                    ],
                )
            )
            assert [i for i, _ in members.succeeded] == [0, 3]
            assert _failed(members) == [(1, FailureReason.CHECK), (2, FailureReason.FOREIGN_KEY)]
            assert isinstance(members.failures[0].error, CheckViolation)
            _assert_masked(members, "404")

            upserted = await w.bulk_upsert(
                BulkUpserter(
                    teams,
                    [
                        {**team(0), "score": 9},
                        {**team(2), "score": None},  # the update itself breaks NOT NULL
                        {**team(9), "name": "team08"},
                        {**team(10), "score": too_big},
                        team(11),
                    ],
                    conflict_columns=("id",),
                    update_columns=("score",),
                )
            )
            assert [row.id for row in upserted.results] == [0, 11]
            assert _failed(upserted) == [
                (1, FailureReason.NOT_NULL),
                (2, FailureReason.UNIQUE),
                (3, FailureReason.DATA),
            ]
            _assert_masked(upserted, str(too_big), "team08")

    db.run(scenario())
    assert [(row[0], row[3]) for row in db.run(_all_teams(db))] == [(0, 9), (2, 2), (8, 2), (11, 2)]


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_on_postgres_a_value_too_long_or_missing_fails_its_row_only(db: Db) -> None:
    """PostgreSQL refuses a value longer than its VARCHAR (a DataError, not an
    IntegrityError): that row fails, typed, and the valid rows around it are stored."""
    long_note = "n" * 41  # note is VARCHAR(40)

    async def scenario() -> None:
        async with db.ops.write_ops() as w:
            upserted = await w.bulk_upsert(
                BulkUpserter(
                    teams,
                    [
                        team(0),
                        {**team(1), "note": long_note},
                        team(2),
                        {**team(3), "score": None},
                        team(4),
                    ],
                    conflict_columns=("id",),
                )
            )
            assert [row.id for row in upserted.results] == [0, 2, 4]
            assert _failed(upserted) == [(1, FailureReason.DATA), (3, FailureReason.NOT_NULL)]
            assert "too long" in upserted.failures[0].message
            assert upserted.failures[1].message.endswith("(score)")
            _assert_masked(upserted, long_note)

            created = await w.bulk_create(
                BulkCreator(
                    teams,
                    [
                        {**team(5), "name": "x" * 41},
                        team(6),
                        {**team(7), "domain": None},
                        team(8),
                    ],
                )
            )
            assert [row.id for row in created.results] == [6, 8]
            assert _failed(created) == [(0, FailureReason.DATA), (2, FailureReason.NOT_NULL)]
            _assert_masked(created, "x" * 41)

            # Values the server itself refuses (not the driver): a text that is no
            # integer, a number out of INTEGER's range, a NUL character in text.
            server_side = await w.bulk_upsert(
                BulkUpserter(
                    teams,
                    [
                        {**team(9), "score": cast(literal("nine"), Integer)},
                        {**team(10), "score": cast(literal(2**40, BigInteger), Integer)},
                        {**team(11), "note": "nul \x00 byte"},
                        {**team(12), "note": long_note},
                        team(13),
                    ],
                    conflict_columns=("id",),
                )
            )
            assert [row.id for row in server_side.results] == [13]
            assert _failed(server_side) == [(i, FailureReason.DATA) for i in range(4)]
            assert [f.message.split(": ", 1)[1] for f in server_side.failures] == [
                "a value is not of its column's type",
                "a number is out of range for its column",
                "a text value holds a character the database cannot store",
                "a value is too long for its column",
            ]
            _assert_masked(server_side, "nine", str(2**40), "nul", long_note)

        # A batch stays one atomic statement: the same too-long value fails it whole.
        with pytest.raises(InvalidValue):
            async with db.ops.write_ops() as w:
                await w.batch_update(BatchUpdater(teams, [teams.c.id >= 0], {"note": long_note}))

    db.run(scenario())
    assert [(row[0], row[4]) for row in db.run(_all_teams(db))] == [
        (n, None) for n in (0, 2, 4, 6, 8, 13)
    ]


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_transient_errors_inside_a_bulk_call_abort_it_whole(db: Db) -> None:
    """A lock timeout or a lost connection is no row's fault: it propagates (for the
    retry policy), and the rows already written in the call are rolled back."""
    from sqlalchemy.ext.asyncio import create_async_engine

    impatient = create_async_engine(
        db.url, connect_args={"server_settings": {"lock_timeout": "20"}}
    )
    errors: list[BaseException] = []

    async def upsert_locked_row() -> None:
        async with DbOps(impatient).write_ops() as w:
            rows = [team(5), {**team(0), "score": 9}, team(6)]
            await w.bulk_upsert(BulkUpserter(teams, rows, conflict_columns=("id",)))

    async def lose_the_connection() -> None:
        async def one(index: int, values: dict[str, Any]) -> Any:
            if index == 1:
                await w.execute(select(func.pg_terminate_backend(func.pg_backend_pid())))
            return await w.create(Creator(teams, values))

        async with db.ops.write_ops() as w:
            await w.partial([team(7), team(8), team(9)], one)

    async def scenario() -> None:
        await _seed(db, 1)
        holder = await db.engine.connect()
        await holder.begin()
        await holder.execute(select(teams).where(teams.c.id == 0).with_for_update())
        try:
            with pytest.raises(DBAPIError) as locked:
                await upsert_locked_row()
            errors.append(locked.value)
        finally:
            await holder.rollback()
            await holder.close()
            await impatient.dispose()
        with pytest.raises(DBAPIError) as lost:
            await lose_the_connection()
        errors.append(lost.value)

    db.run(scenario())
    assert [is_transient(e) for e in errors] == [True, True]
    assert is_connection_lost(errors[1])
    assert [row[0] for row in db.run(_all_teams(db))] == [0], "a row of an aborted call was kept"


# -- pages ------------------------------------------------------------------------------------


def _search(db: Db, spec: BatchQuerier) -> Any:
    async def run() -> Any:
        async with db.ops.read_ops() as r:
            return await r.search(spec)

    return db.run(run())


def test_offset_pages(db: Db) -> None:
    db.run(_seed(db, 10))
    orders = [Order(teams.c.id)]
    first = _search(db, BatchQuerier(select(teams), orders, pagination=OffsetPagination(4)))
    assert [r.id for r in first.items] == [0, 1, 2, 3]
    assert (first.total_count, first.has_next, first.has_previous) == (10, True, False)
    last = _search(db, BatchQuerier(select(teams), orders, pagination=OffsetPagination(4, 8)))
    assert [r.id for r in last.items] == [8, 9]
    assert (last.has_next, last.has_previous) == (False, True)
    filtered = _search(
        db,
        BatchQuerier(select(teams), orders, [teams.c.score == 0], OffsetPagination(2, 1)),
    )
    assert [r.id for r in filtered.items] == [3, 6]
    assert filtered.total_count == 4
    with pytest.raises(InvalidQuery):
        OffsetPagination(0)
    with pytest.raises(InvalidQuery):
        OffsetPagination(5, -1)


def test_cursor_pages_walk_a_mixed_ordering_both_ways(db: Db) -> None:
    db.run(_seed(db, 11))
    orders = [Order(teams.c.score, descending=True), Order(teams.c.id)]
    expected = sorted(range(11), key=lambda n: (-(n % 3), n))  # score = id % 3
    seen: list[int] = []
    cursor: str | None = None
    pages = []
    while True:
        page = _search(
            db, BatchQuerier(select(teams), orders, pagination=CursorPagination(4, after=cursor))
        )
        pages.append(page)
        seen.extend(r.id for r in page.items)
        assert page.total_count == 11
        if not page.has_next:
            assert page.next_cursor is None
            break
        cursor = page.next_cursor
    assert seen == expected
    # Backward from the last page's first row gives the page before it.
    before = pages[-1].previous_cursor
    back = _search(
        db, BatchQuerier(select(teams), orders, pagination=CursorPagination(4, before=before))
    )
    assert [r.id for r in back.items] == [r.id for r in pages[-2].items]
    assert back.has_next and back.has_previous
    other_order = [Order(teams.c.id)]
    with pytest.raises(InvalidQuery):
        _search(
            db,
            BatchQuerier(select(teams), other_order, pagination=CursorPagination(4, after=cursor)),
        )
    with pytest.raises(InvalidQuery):
        CursorPagination(4, after=cursor, before=cursor)
    with pytest.raises(InvalidQuery):
        _search(db, BatchQuerier(select(teams), [], pagination=CursorPagination(4)))


def test_scopes_become_conditions_and_an_unmapped_scope_is_refused(db: Db) -> None:
    async def scenario() -> None:
        async with db.ops.write_ops() as w:
            await w.bulk_create(BulkCreator(teams, [team(0, "a"), team(1, "b"), team(2, "b")]))
            await w.create(Creator(players, {"id": 7, "team_id": 2, "name": "p"}))

    db.run(scenario())
    orders = [Order(teams.c.id)]
    in_b = BatchQuerier(select(teams), orders, scope=DomainScope("b"), scope_columns=TEAM_SCOPE)
    assert [r.id for r in _search(db, in_b).items] == [1, 2]
    mine = BatchQuerier(select(teams), orders, scope=UserScope(7), scope_columns=TEAM_SCOPE)  # type: ignore[arg-type]
    assert [r.id for r in _search(db, mine).items] == [2]
    unmapped = BatchQuerier(select(teams), orders, scope=GroupScope(1), scope_columns=TEAM_SCOPE)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery):
        _search(db, unmapped)


# -- transactions -------------------------------------------------------------------------------


def test_read_and_write_ops_open_exactly_one_transaction(db: Db) -> None:
    counter = BeginCounter(db.engine)

    async def write_then_fail() -> None:
        async with db.ops.write_ops() as w:
            await w.create(Creator(teams, team(3)))
            raise RuntimeError("abort")

    async def scenario() -> None:
        async with db.ops.write_ops() as w:
            await w.create(Creator(teams, team(1)))
            await w.update(Updater(teams, 1, {"score": 5}))
            await w.bulk_create(BulkCreator(teams, [team(2), team(1)]))  # savepoints inside
        assert counter.count == 1
        async with db.ops.read_ops() as r:
            await r.query(Querier(teams, 1))
            await r.search(BatchQuerier(select(teams), [Order(teams.c.id)]))
        assert counter.count == 2
        with pytest.raises(RuntimeError):
            await write_then_fail()
        assert counter.count == 3

    try:
        db.run(scenario())
    finally:
        counter.close()
    assert [row[0] for row in db.run(_all_teams(db))] == [1, 2], "the aborted write was kept"


# -- transient errors and retries ------------------------------------------------------------


def test_lock_errors_are_transient_and_constraint_errors_are_not(db: Db) -> None:
    impatient = make_engine(db.url, busy_timeout_ms=10)
    if db.backend == "postgres":
        from sqlalchemy.ext.asyncio import create_async_engine

        impatient = create_async_engine(
            db.url, connect_args={"server_settings": {"lock_timeout": "20"}}
        )
    errors: list[BaseException] = []

    async def scenario() -> None:
        await _seed(db, 1)
        holder = await db.engine.connect()
        await holder.begin()
        await holder.execute(select(teams).where(teams.c.id == 0).with_for_update())
        try:
            async with impatient.connect() as conn, conn.begin():
                await conn.execute(select(teams).where(teams.c.id == 0).with_for_update())
        except DBAPIError as exc:
            errors.append(exc)
        finally:
            await holder.rollback()
            await holder.close()
        try:
            async with db.ops.write_ops() as w:
                await w.execute(teams.insert().values(team(0)))
        except IntegrityError as exc:
            errors.append(exc)
        await impatient.dispose()

    db.run(scenario())
    assert [is_transient(e) for e in errors] == [True, False]
    assert not is_transient(ValueError("not a database error"))


def test_resilience_retries_transient_errors_up_to_the_policy_then_gives_up(db: Db) -> None:
    impatient = make_engine(db.url, busy_timeout_ms=5)
    if db.backend == "postgres":
        from sqlalchemy.ext.asyncio import create_async_engine

        impatient = create_async_engine(
            db.url, connect_args={"server_settings": {"lock_timeout": "5"}}
        )
    metrics = OperationMetrics("rt", CollectorRegistry())
    resilience = Resilience(metrics, RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002))
    ops = DbOps(impatient)

    async def locked_write() -> None:
        async with ops.write_ops() as w:
            await w.execute(select(teams).where(teams.c.id == 0).with_for_update())

    async def domain_error() -> None:
        raise AlreadyExists("not worth a retry")

    async def scenario() -> None:
        await _seed(db, 1)
        holder = await db.engine.connect()
        await holder.begin()
        await holder.execute(select(teams).where(teams.c.id == 0).with_for_update())
        try:
            with pytest.raises(DBAPIError):
                await resilience.call("locked", locked_write)
        finally:
            await holder.rollback()
            await holder.close()
        await resilience.call("locked", locked_write)  # the lock is gone: succeeds at once
        with pytest.raises(AlreadyExists):
            await resilience.call("domain", domain_error)
        await impatient.dispose()

    db.run(scenario())
    assert metrics.value("attempts_total", operation="locked") == 3 + 1
    assert metrics.value("operations_total", operation="locked", outcome="transient") == 1
    assert metrics.value("operations_total", operation="locked", outcome="ok") == 1
    assert metrics.value("attempts_total", operation="domain") == 1
    assert metrics.value("operations_total", operation="domain", outcome="already_exists") == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)
    rng = random.Random(7)
    for retry, cap in ((1, 0.01), (2, 0.02), (3, 0.04), (4, 0.05), (5, 0.05)):
        delays = {policy.backoff(retry, rng) for _ in range(50)}
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(delays) > 1, "no jitter"
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def test_utc_datetimes_come_back_aware_and_naive_ones_are_refused(db: Db) -> None:
    moment = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    async def create_naive() -> None:
        async with db.ops.write_ops() as w:
            await w.create(Creator(teams, {**team(2), "created_at": dt.datetime(2030, 1, 1)}))

    async def scenario() -> None:
        async with db.ops.write_ops() as w:
            row = await w.create(Creator(teams, {**team(1), "created_at": moment}))
            assert row.created_at == moment and row.created_at.tzinfo is dt.UTC
        with pytest.raises(InvalidValue) as refused:
            await create_naive()
        assert "aware" in str(refused.value.__cause__)

    db.run(scenario())
