"""The group-config service on SQLite and PostgreSQL: rules, authorization, limits,
one transaction per operation, retries, pagination, the plugin and its commands."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jaseci_like_services.db import DbService
from jaseci_like_services.group_config import (
    CurrentUser,
    DotfileAlreadyExists,
    DotfileChanges,
    DotfileLimitExceeded,
    DotfileNotFound,
    DotfileOrder,
    DotfileSpaceExceeded,
    DotfileSpec,
    Forbidden,
    GroupConfig,
    GroupNotFound,
    InvalidDotfilePath,
    InvalidInput,
    InvalidPermission,
    NoCurrentUser,
    acting_as,
)
from jaseci_like_services.group_config.errors import (
    DomainNotFound,
    EntityAlreadyExists,
    InvalidDotfileData,
)
from jaseci_like_services.group_config.models import groups
from jaseci_like_services.group_config.plugin import GroupConfigService
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from jaseci_like import MemoryHook, MetaService
from jaseci_like.config.layers import ConfigLayers
from jaseci_like.repository import (
    UNSET,
    CursorPagination,
    InvalidQuery,
    OffsetPagination,
    RetryEvent,
    RetryPolicy,
)
from tests.group_config_fixtures import (
    BACKENDS,
    ROLES,
    ROOT,
    BeginCounter,
    Harness,
    Shared,
    World,
    open_harness,
    seed_world,
    sqlite_url,
)
from tests.plugin_fixtures import Cli, parse_table

pytest_plugins = ["tests.group_config_fixtures", "tests.plugin_fixtures"]

GroupKey = uuid.UUID | str
Op = Callable[[GroupConfig, GroupKey, str | None, CurrentUser], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    name: str
    writes: bool
    call: Op


OPERATIONS = [
    Operation("get", False, lambda a, g, d, u: a.dotfiles.get(g, ".seed", domain=d, user=u)),
    Operation("search", False, lambda a, g, d, u: a.dotfiles.search(g, domain=d, user=u)),
    Operation("usage", False, lambda a, g, d, u: a.dotfiles.usage(g, domain=d, user=u)),
    Operation(
        "create",
        True,
        lambda a, g, d, u: a.dotfiles.create(g, DotfileSpec(".new", "n"), domain=d, user=u),
    ),
    Operation(
        "update",
        True,
        lambda a, g, d, u: a.dotfiles.update(
            g, ".seed", DotfileChanges(data="changed"), domain=d, user=u
        ),
    ),
    Operation("delete", True, lambda a, g, d, u: a.dotfiles.delete(g, ".seed", domain=d, user=u)),
    Operation("purge", True, lambda a, g, d, u: a.dotfiles.purge(g, ".seed", domain=d, user=u)),
    Operation(
        "batch_update",
        True,
        lambda a, g, d, u: a.dotfiles.batch_update(
            g, [".seed", ".other"], DotfileChanges(permission="700"), domain=d, user=u
        ),
    ),
    Operation(
        "batch_delete",
        True,
        lambda a, g, d, u: a.dotfiles.batch_delete(g, [".seed"], domain=d, user=u),
    ),
    Operation(
        "batch_purge",
        True,
        lambda a, g, d, u: a.dotfiles.batch_purge(g, [".seed"], domain=d, user=u),
    ),
    Operation(
        "bulk_create",
        True,
        lambda a, g, d, u: a.dotfiles.bulk_create(g, [DotfileSpec(".b", "b")], domain=d, user=u),
    ),
    Operation(
        "bulk_upsert",
        True,
        lambda a, g, d, u: a.dotfiles.bulk_upsert(
            g, [DotfileSpec(".seed", "up")], domain=d, user=u
        ),
    ),
]
#: Who may read and who may write the dotfiles of acme's group "research".
READERS = {"superadmin", "admin", "member"}
WRITERS = {"superadmin", "admin"}
#: uuid: the group's UUID; name: "research" in domain acme; own_domain: "research"
#: with no domain, so the acting user's domain is searched.
REFS = ("uuid", "name", "own_domain")


def _ref(world: World, kind: str) -> tuple[GroupKey, str | None]:
    if kind == "uuid":
        return world.group.id, None
    if kind == "name":
        return "research", "acme"
    return "research", None


async def _outcome(call: Awaitable[Any]) -> BaseException | None:
    try:
        await call
    except Exception as exc:
        return exc
    return None


# -- authorization --------------------------------------------------------------------------


@pytest.mark.parametrize("ref_kind", REFS)
@pytest.mark.parametrize("op", OPERATIONS, ids=lambda o: o.name)
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(shared: Shared, role: str, op: Operation, ref_kind: str) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    group, domain = _ref(world, ref_kind)
    actor = world.role(role)
    before = h.run(h.rows(world.group.id))

    error = h.run(_outcome(op.call(h.app, group, domain, actor)))
    after = h.run(h.rows(world.group.id))

    if ref_kind == "own_domain" and role == "other_admin":
        # "research" is looked up in globex, the admin's own domain: there is none there.
        assert isinstance(error, GroupNotFound), error
        assert after == before
        return
    allowed = role in (WRITERS if op.writes else READERS)
    if allowed:
        assert error is None, f"{role} {op.name}: {error!r}"
        assert (after != before) == op.writes
    else:
        assert isinstance(error, Forbidden), f"{role} {op.name}: {error!r}"
        assert after == before, "a refused operation changed something"


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda o: o.name)
@pytest.mark.parametrize("role", ROLES)
def test_an_unknown_group_is_group_not_found_for_every_role(
    shared: Shared, role: str, op: Operation
) -> None:
    h, world = shared.harness, shared.world
    actor = world.role(role)
    for group, domain in ((uuid.uuid4(), None), ("no-such-group", "acme"), ("research", "nope")):
        error = h.run(_outcome(op.call(h.app, group, domain, actor)))
        assert isinstance(error, GroupNotFound), f"{role} {op.name} {group}: {error!r}"


def test_a_group_id_with_another_domain_is_not_found(shared: Shared) -> None:
    h, world = shared.harness, shared.world
    with pytest.raises(GroupNotFound):
        h.run(h.app.dotfiles.search(world.group.id, domain="globex", user=ROOT))


def test_the_current_user_comes_from_the_context_or_the_argument(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world

    async def scenario() -> None:
        with pytest.raises(NoCurrentUser):
            await h.app.dotfiles.get(world.group.id, ".seed")
        with acting_as(world.member):
            assert (await h.app.dotfiles.get(world.group.id, ".seed")).data == "seed data"
            # An explicit user wins over the context.
            with pytest.raises(Forbidden):
                await h.app.dotfiles.get(world.group.id, ".seed", user=world.outsider)

    h.run(scenario())


def test_the_blocking_facade_runs_on_the_loop_with_the_callers_user(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    results: list[object] = []

    def worker() -> None:
        with acting_as(world.member):
            results.append(h.app.sync.dotfiles.get(world.group.id, ".seed").data)
            try:
                h.app.sync.dotfiles.delete(world.group.id, ".seed")
            except Forbidden as exc:
                results.append(exc.code)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(60)
    assert results == ["seed data", "forbidden"]


# -- input rules ------------------------------------------------------------------------------

INVALID_PATHS = [
    "",
    "/etc/passwd",
    "/.bashrc",
    "../.bashrc",
    "a/../b",
    "..",
    "a//b",
    "a/",
    "./.ssh",
    ".",
    ".ssh",
    ".ssh/authorized_keys",
    ".terminfo",
    ".jupyter",
    ".local",
    ".config",
    "bad\nname",
    "tab\there",
    "nul\x00byte",
    "del\x7fchar",
    "c1\x85control",
    "x" * 256,
    "é" * 128,  # 256 bytes in UTF-8
    "\ud800lone-surrogate",
]


@pytest.mark.parametrize("path", INVALID_PATHS, ids=repr)
def test_invalid_paths_are_refused_and_nothing_is_stored(shared: Shared, path: str) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    before = h.run(h.rows(world.group.id))
    for call in (
        h.app.dotfiles.create(world.group.id, DotfileSpec(path, "data"), user=ROOT),
        h.app.dotfiles.bulk_create(world.group.id, [DotfileSpec(path, "d")], user=ROOT),
    ):
        error = h.run(_outcome(call))
        if error is None:  # bulk: refused per item
            continue
        assert isinstance(error, InvalidDotfilePath), error
        assert error.http_status == 422
    result = h.run(h.app.dotfiles.bulk_upsert(world.group.id, [DotfileSpec(path, "d")], user=ROOT))
    assert [type(f.error) for f in result.failures] == [InvalidDotfilePath]
    assert h.run(h.rows(world.group.id)) == before


def test_valid_paths_are_accepted_case_sensitively(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    ok = [".bashrc", ".Bashrc", ".BASHRC", ".ssh/config", ".config/nvim/init.vim", "x" * 255]
    ok.append("é" * 127)  # 254 bytes
    for path in ok:
        h.run(h.app.dotfiles.create(world.group.id, DotfileSpec(path, "d"), user=ROOT))
    listing = h.run(h.app.dotfiles.search(world.group.id, user=ROOT))
    assert {d.path for d in listing.page.items} >= set(ok)


@pytest.mark.parametrize(
    "permission",
    ["", "64", "6444", "888", "abc", "0o644", "+644", " 644", "644\n", "\uff16\uff14\uff14", "-44"],
)
def test_invalid_permissions_are_refused_and_nothing_is_stored(
    shared: Shared, permission: str
) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    before = h.run(h.rows(world.group.id))
    with pytest.raises(InvalidPermission):
        h.run(h.app.dotfiles.create(world.group.id, DotfileSpec(".p", "d", permission), user=ROOT))
    with pytest.raises(InvalidPermission):
        h.run(
            h.app.dotfiles.update(
                world.group.id, ".seed", DotfileChanges(permission=permission), user=ROOT
            )
        )
    assert h.run(h.rows(world.group.id)) == before


@pytest.mark.parametrize("permission", ["000", "644", "755", "777", "600"])
def test_three_octal_digits_are_accepted(shared: Shared, permission: str) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    result = h.run(
        h.app.dotfiles.create(world.group.id, DotfileSpec(".p", "d", permission), user=ROOT)
    )
    assert result.dotfile.permission == permission


def test_data_that_cannot_be_stored_is_refused(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    for data in ("nul\x00inside", "\udcff"):
        with pytest.raises(InvalidDotfileData):
            h.run(h.app.dotfiles.create(world.group.id, DotfileSpec(".d", data), user=ROOT))


SQL_LOOKING = [
    "'; DROP TABLE gc_dotfiles; --",
    '" OR 1=1 --',
    "%_\\%",
    "Robert'); DELETE FROM gc_groups;--",
]


def test_sql_looking_input_is_stored_verbatim(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    for n, text_ in enumerate(SQL_LOOKING):
        path = f".sql{n}{text_.replace('/', '_')}"
        h.run(h.app.dotfiles.create(world.group.id, DotfileSpec(path, text_), user=ROOT))
        assert h.run(h.app.dotfiles.get(world.group.id, path, user=ROOT)).data == text_
    # A prefix filter with LIKE wildcards in it is taken literally.
    listing = h.run(h.app.dotfiles.search(world.group.id, path_prefix=".sql2%_", user=ROOT))
    assert [d.path for d in listing.page.items] == [".sql2%_\\%"]
    assert h.run(h.app.groups.get("research", domain="acme", user=ROOT)).name == "research"


# -- limits -----------------------------------------------------------------------------------


def test_filling_to_just_under_the_byte_limit_then_one_byte_too_many(gc: Harness) -> None:
    world = gc.run(seed_world(gc.app))
    app, gid = gc.app, world.group.id
    limit = app.limits.max_bytes
    # Four files filling the group to limit - 1 bytes: paths count too.
    paths = [".a", ".b", ".c", ".d"]
    room = limit - 1 - sum(len(p) for p in paths)
    sizes = [room // 4] * 3 + [room - 3 * (room // 4)]
    for path, size in zip(paths, sizes, strict=True):
        result = gc.run(app.dotfiles.create(gid, DotfileSpec(path, "x" * size), user=ROOT))
    assert result.leftover_space == 1
    before = gc.run(gc.rows(gid))
    with pytest.raises(DotfileSpaceExceeded) as caught:
        gc.run(app.dotfiles.create(gid, DotfileSpec(".e", ""), user=ROOT))  # 2 bytes of path
    assert caught.value.leftover_space == 1
    assert caught.value.http_status == 400
    with pytest.raises(DotfileSpaceExceeded):
        gc.run(app.dotfiles.update(gid, ".a", DotfileChanges(data="x" * (sizes[0] + 2)), user=ROOT))
    with pytest.raises(DotfileSpaceExceeded):
        gc.run(app.dotfiles.batch_update(gid, paths, DotfileChanges(data="y" * room), user=ROOT))
    assert gc.run(gc.rows(gid)) == before, "a refused write changed something"
    # Exactly the limit fits; a multi-byte character counts as its UTF-8 bytes.
    gc.run(app.dotfiles.update(gid, ".a", DotfileChanges(data="x" * (sizes[0] + 1)), user=ROOT))
    usage = gc.run(app.dotfiles.usage(gid, user=ROOT))
    assert (usage.bytes, usage.leftover_space) == (limit, 0)
    # One byte over, in fewer characters than the limit: bytes are what count.
    k, r = divmod(sizes[0] + 2, 2)
    with pytest.raises(DotfileSpaceExceeded):
        gc.run(app.dotfiles.update(gid, ".a", DotfileChanges(data="é" * k + "x" * r), user=ROOT))
    # Shrinking is always allowed.
    gc.run(app.dotfiles.update(gid, ".a", DotfileChanges(data=""), user=ROOT))
    assert gc.run(app.dotfiles.usage(gid, user=ROOT)).leftover_space == sizes[0] + 1


def test_at_most_the_dotfile_limit_and_deleting_frees_a_place(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    app, gid = h.app, world.group.id
    specs = [DotfileSpec(f".f{n:03}", "d") for n in range(app.limits.max_dotfiles - 2)]
    result = h.run(app.dotfiles.bulk_create(gid, specs, user=ROOT))
    assert not result.failures
    with pytest.raises(DotfileLimitExceeded) as caught:
        h.run(app.dotfiles.create(gid, DotfileSpec(".one-too-many", "d"), user=ROOT))
    assert caught.value.code == "dotfile_limit_exceeded"
    h.run(app.dotfiles.delete(gid, ".f000", user=ROOT))
    h.run(app.dotfiles.create(gid, DotfileSpec(".one-too-many", "d"), user=ROOT))
    assert h.run(app.dotfiles.usage(gid, user=ROOT)).count == app.limits.max_dotfiles


# -- operations -------------------------------------------------------------------------------


def test_standard_operations_and_their_errors(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    app, gid = h.app, world.group.id
    with pytest.raises(DotfileAlreadyExists) as exists:
        h.run(app.dotfiles.create(gid, DotfileSpec(".seed", "again"), user=ROOT))
    assert (exists.value.http_status, exists.value.code) == (409, "dotfile_already_exists")
    for call in (
        app.dotfiles.get(gid, ".missing", user=ROOT),
        app.dotfiles.update(gid, ".missing", DotfileChanges(data="x"), user=ROOT),
        app.dotfiles.delete(gid, ".missing", user=ROOT),
        app.dotfiles.purge(gid, ".missing", user=ROOT),
    ):
        error = h.run(_outcome(call))
        assert isinstance(error, DotfileNotFound), error
        assert error.http_status == 404

    # Only the given fields change.
    updated = h.run(app.dotfiles.update(gid, ".seed", DotfileChanges(permission="600"), user=ROOT))
    assert (updated.dotfile.permission, updated.dotfile.data) == ("600", "seed data")
    updated = h.run(app.dotfiles.update(gid, ".seed", DotfileChanges(data="new"), user=ROOT))
    assert (updated.dotfile.permission, updated.dotfile.data) == ("600", "new")
    with pytest.raises(InvalidInput):
        h.run(app.dotfiles.update(gid, ".seed", DotfileChanges(UNSET, UNSET), user=ROOT))

    # Soft delete keeps the row and frees the path; purge removes every row of the path.
    h.run(app.dotfiles.delete(gid, ".seed", user=ROOT))
    with pytest.raises(DotfileNotFound):
        h.run(app.dotfiles.get(gid, ".seed", user=ROOT))
    h.run(app.dotfiles.create(gid, DotfileSpec(".seed", "reborn"), user=ROOT))
    statuses = sorted(r[5] for r in h.run(h.rows(gid)) if r[2] == ".seed")
    assert statuses == ["active", "deleted"]
    assert h.run(app.dotfiles.purge(gid, ".seed", user=ROOT)) == 2
    assert not [r for r in h.run(h.rows(gid)) if r[2] == ".seed"]


def test_batch_operations_are_one_statement_and_return_counts(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    app, gid = h.app, world.group.id
    paths = [".seed", ".other", ".absent"]
    assert (
        h.run(app.dotfiles.batch_update(gid, paths, DotfileChanges(permission="700"), user=ROOT))
        == 2
    )
    assert {d.permission for d in h.run(app.dotfiles.search(gid, user=ROOT)).page.items} == {"700"}
    assert h.run(app.dotfiles.batch_delete(gid, paths, user=ROOT)) == 2
    assert h.run(app.dotfiles.usage(gid, user=ROOT)).count == 0
    assert h.run(app.dotfiles.batch_purge(gid, paths, user=ROOT)) == 2
    assert h.run(h.rows(gid)) == []


def test_bulk_operations_report_partial_failures_by_index(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    app, gid = h.app, world.group.id
    specs = [
        DotfileSpec(".b0", "ok"),
        DotfileSpec(".seed", "duplicate"),
        DotfileSpec("/abs", "invalid"),
        DotfileSpec(".b3", "ok", "7777"),
        DotfileSpec(".b4", "ok"),
        DotfileSpec(".b0", "duplicate within the call"),
    ]
    result = h.run(app.dotfiles.bulk_create(gid, specs, user=ROOT))
    assert [i for i, _ in result.succeeded] == [0, 4]
    kinds = {f.index: type(f.error) for f in result.failures}
    assert kinds == {
        1: DotfileAlreadyExists,
        2: InvalidDotfilePath,
        3: InvalidPermission,
        5: DotfileAlreadyExists,
    }
    upserted = h.run(
        app.dotfiles.bulk_upsert(
            gid,
            [
                DotfileSpec(".seed", "replaced", "600"),
                DotfileSpec(".b9", "new"),
                DotfileSpec("..", ""),
            ],
            user=ROOT,
        )
    )
    assert [i for i, _ in upserted.succeeded] == [0, 1]
    assert [f.index for f in upserted.failures] == [2]
    seed = h.run(app.dotfiles.get(gid, ".seed", user=ROOT))
    assert (seed.data, seed.permission) == ("replaced", "600")
    assert len([r for r in h.run(h.rows(gid)) if r[2] == ".seed"]) == 1


def test_bulk_create_stops_each_item_at_the_limits(gc: Harness) -> None:
    world = gc.run(seed_world(gc.app))
    specs = [DotfileSpec(f".n{n:03}", "d") for n in range(gc.app.limits.max_dotfiles + 5)]
    result = gc.run(gc.app.dotfiles.bulk_create(world.group.id, specs, user=ROOT))
    assert len(result.succeeded) == gc.app.limits.max_dotfiles
    assert {type(f.error) for f in result.failures} == {DotfileLimitExceeded}
    assert len(gc.run(gc.rows(world.group.id))) == gc.app.limits.max_dotfiles


# -- one transaction per operation ----------------------------------------------------------


def test_every_operation_is_exactly_one_transaction(shared: Shared) -> None:
    h, world = shared.harness, shared.world
    counter = BeginCounter(h.engine)
    try:
        for op in OPERATIONS:
            for role in ("superadmin", "member", "other_admin"):
                shared.reset()
                counter.count = 0
                h.run(_outcome(op.call(h.app, world.group.id, None, world.role(role))))
                assert counter.count == 1, f"{op.name} as {role}: {counter.count} transactions"
        for failing in (
            h.app.dotfiles.get(uuid.uuid4(), ".seed", user=ROOT),
            h.app.dotfiles.get(world.group.id, ".missing", user=ROOT),
            h.app.dotfiles.create(world.group.id, DotfileSpec(".seed", "dup"), user=ROOT),
        ):
            counter.count = 0
            assert h.run(_outcome(failing)) is not None
            assert counter.count == 1
        counter.count = 0
        with pytest.raises(InvalidDotfilePath):
            h.run(h.app.dotfiles.create(world.group.id, DotfileSpec("/x", "d"), user=ROOT))
        assert counter.count == 0, "invalid input must be refused before any SQL"
    finally:
        counter.close()


# -- resilience -------------------------------------------------------------------------------


def test_a_domain_error_is_not_retried(shared: Shared) -> None:
    h, world = shared.harness, shared.world
    slow = h.new_app(retry=RetryPolicy(attempts=5, base_delay=2.0, max_delay=2.0))
    began = time.monotonic()
    with pytest.raises(DotfileNotFound):
        h.run(slow.dotfiles.get(world.group.id, ".missing", user=ROOT))
    with pytest.raises(Forbidden):
        h.run(slow.dotfiles.get(world.group.id, ".seed", user=world.outsider))
    assert time.monotonic() - began < 1.0, "a retry would have waited 2 s"
    m = slow.metrics
    assert m.value("attempts_total", operation="dotfile.get") == 2  # one per call
    assert m.value("retries_total", operation="dotfile.get") == 0
    assert m.value("operations_total", operation="dotfile.get", outcome="dotfile_not_found") == 1
    assert m.value("operations_total", operation="dotfile.get", outcome="forbidden") == 1


def test_a_transient_lock_error_is_retried_then_succeeds(gc: Harness) -> None:
    world = gc.run(seed_world(gc.app))
    gid = world.group.id
    if gc.backend == "sqlite":
        # A writer that waits at most 30 ms for SQLite's lock: "database is locked".
        engine = gc.extra_engine(busy_timeout_ms=30)
    else:
        engine = create_async_engine(
            gc.url, connect_args={"server_settings": {"lock_timeout": "50"}}
        )
        gc.engines.append(engine)
    errors: list[str] = []

    async def scenario() -> None:
        holder = await gc.engine.connect()
        await holder.begin()  # SQLite: BEGIN IMMEDIATE takes the write lock
        await holder.execute(select(groups.c.id).where(groups.c.id == gid).with_for_update())

        async def release(event: RetryEvent) -> None:
            errors.append(str(event.error))
            if not holder.closed:
                await holder.rollback()
                await holder.close()

        app = gc.new_app(engine, on_retry=release)
        result = await app.dotfiles.create(gid, DotfileSpec(".after-lock", "d"), user=ROOT)
        assert result.dotfile.path == ".after-lock"
        assert app.metrics.value("attempts_total", operation="dotfile.create") == 2
        assert app.metrics.value("retries_total", operation="dotfile.create") == 1
        assert app.metrics.value("operations_total", operation="dotfile.create", outcome="ok") == 1

    gc.run(scenario())
    assert len(errors) == 1
    assert ("database is locked" if gc.backend == "sqlite" else "lock") in errors[0]


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Harness]:
    harness = open_harness("postgres", postgres_url)
    try:
        yield harness
    finally:
        harness.close()


def test_a_lost_postgres_connection_is_retried_on_a_new_one(pg: Harness) -> None:
    gc = pg
    world = gc.run(seed_world(gc.app))
    # One pooled connection, no pre-ping: the next operation meets the dead socket.
    engine = create_async_engine(gc.url, pool_size=1, max_overflow=0)
    gc.engines.append(engine)
    app = gc.new_app(engine)

    async def scenario() -> None:
        await app.dotfiles.usage(world.group.id, user=ROOT)
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with gc.engine.connect() as killer:
            # The timeout form waits until the backend has exited.
            await killer.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        await app.dotfiles.create(world.group.id, DotfileSpec(".survived", "d"), user=ROOT)

    gc.run(scenario())
    assert app.metrics.value("attempts_total", operation="dotfile.create") == 2
    assert app.metrics.value("operations_total", operation="dotfile.create", outcome="ok") == 1


# -- pagination -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["offset", "cursor"])
def test_pages_cover_every_row_once_under_concurrent_inserts(gc: Harness, mode: str) -> None:
    world = gc.run(seed_world(gc.app))
    app, gid = gc.app, world.group.id
    seeded = [DotfileSpec(f".s{n:02}", "d") for n in range(40)]
    gc.run(app.dotfiles.bulk_create(gid, seeded, user=ROOT))

    async def scenario() -> list[str]:
        seen: list[str] = []
        page_read = asyncio.Event()
        inserted = asyncio.Event()
        done = False

        async def inserter() -> None:
            # Three new rows between each of the first pages and the next.
            for n in range(6):
                await page_read.wait()
                page_read.clear()
                if done:
                    return
                for k in range(3):
                    await app.dotfiles.create(gid, DotfileSpec(f".i{n}{k}", "d"), user=ROOT)
                inserted.set()

        async def pager() -> None:
            nonlocal done
            offset, cursor, pages = 0, None, 0
            while True:
                pagination: OffsetPagination | CursorPagination
                if mode == "offset":
                    pagination = OffsetPagination(limit=7, offset=offset)
                else:
                    pagination = CursorPagination(limit=7, after=cursor)
                listing = await app.dotfiles.search(gid, pagination=pagination, user=ROOT)
                seen.extend(d.path for d in listing.page.items)
                offset += len(listing.page.items)
                cursor = listing.page.next_cursor
                pages += 1
                if not listing.page.has_next:
                    done = True
                    page_read.set()
                    return
                if pages <= 6:
                    page_read.set()  # rows are inserted between this page and the next
                    await inserted.wait()
                    inserted.clear()

        await asyncio.gather(inserter(), pager())
        return seen

    seen = gc.run(scenario())
    assert len(seen) == len(set(seen)), "a row was seen twice"
    assert {s.path for s in seeded} <= set(seen), "a row present all along was skipped"
    final = gc.run(app.dotfiles.search(gid, pagination=OffsetPagination(1000), user=ROOT))
    assert sorted(seen) == sorted(d.path for d in final.page.items)
    assert len(seen) == 40 + 18


def test_cursor_pages_go_both_ways_and_refuse_foreign_cursors(shared: Shared) -> None:
    shared.reset()
    h, world = shared.harness, shared.world
    app, gid = h.app, world.group.id
    h.run(app.dotfiles.bulk_create(gid, [DotfileSpec(f".c{n}", "d") for n in range(5)], user=ROOT))
    first = h.run(app.dotfiles.search(gid, pagination=CursorPagination(3), user=ROOT)).page
    assert (first.has_previous, first.has_next, first.total_count) == (False, True, 7)
    assert first.next_cursor is not None
    second = h.run(
        app.dotfiles.search(gid, pagination=CursorPagination(3, after=first.next_cursor), user=ROOT)
    ).page
    assert second.has_previous and second.previous_cursor is not None
    back = h.run(
        app.dotfiles.search(
            gid, pagination=CursorPagination(3, before=second.previous_cursor), user=ROOT
        )
    ).page
    assert [d.path for d in back.items] == [d.path for d in first.items]
    with pytest.raises(InvalidQuery):
        h.run(app.dotfiles.search(gid, pagination=CursorPagination(3, after="garbage"), user=ROOT))
    by_path = h.run(
        app.dotfiles.search(gid, order=DotfileOrder.PATH, pagination=CursorPagination(3), user=ROOT)
    ).page
    assert [d.path for d in by_path.items] == [".c0", ".c1", ".c2"]
    with pytest.raises(InvalidQuery):  # a cursor of the created order, used with the path order
        h.run(
            app.dotfiles.search(
                gid,
                order=DotfileOrder.PATH,
                pagination=CursorPagination(3, after=first.next_cursor),
                user=ROOT,
            )
        )


# -- domains, groups, users -----------------------------------------------------------------


def test_admin_operations_follow_the_domain_rules(shared: Shared) -> None:
    h, world = shared.harness, shared.world
    app = h.app
    suffix = uuid.uuid4().hex[:8]

    async def scenario() -> None:
        # Groups: an admin creates in their own domain only; names are unique per domain.
        mine = await app.groups.create(f"g-{suffix}", user=world.admin)
        assert mine.domain == "acme"
        with pytest.raises(Forbidden):
            await app.groups.create(f"g-{suffix}", domain="acme", user=world.other_admin)
        with pytest.raises(EntityAlreadyExists):
            await app.groups.create(f"g-{suffix}", user=world.admin)
        with pytest.raises(DomainNotFound):
            await app.groups.create("x", domain="nowhere", user=ROOT)
        with pytest.raises(Forbidden):
            await app.groups.create(f"u-{suffix}", user=world.member)
        # Users see the groups they belong to; admins their domain's.
        seen = {g.name for g in (await app.groups.search(user=world.member)).items}
        assert seen == {"research"}
        admin_seen = {g.domain for g in (await app.groups.search(user=world.admin)).items}
        assert admin_seen == {"acme"}
        with pytest.raises(Forbidden):
            await app.groups.search(domain="globex", user=world.admin)

    h.run(scenario())


def test_members_and_roles_follow_the_domain_rules(shared: Shared) -> None:
    h, world = shared.harness, shared.world
    app = h.app
    suffix = uuid.uuid4().hex[:8]

    async def scenario() -> None:
        mine = await app.groups.create(f"m-{suffix}", user=world.admin)
        # Members: same domain only; an admin of another domain may not touch them.
        user = await app.users.create(f"new-{suffix}@acme.test", user=world.admin)
        await app.groups.add_member(mine.id, user.email, user=world.admin)
        with pytest.raises(EntityAlreadyExists):
            await app.groups.add_member(mine.id, user.id, user=world.admin)
        with pytest.raises(Forbidden):
            await app.groups.remove_member(mine.id, user.id, user=world.other_admin)
        foreign = await app.users.create(f"f-{suffix}@globex.test", domain="globex", user=ROOT)
        with pytest.raises(InvalidInput):
            await app.groups.add_member(mine.id, foreign.id, user=ROOT)
        members = await app.groups.members(mine.id, user=world.admin)
        assert [u.email for u in members.items] == [user.email]
        # Roles: an admin may not make a superadmin; users see only themselves.
        with pytest.raises(Forbidden):
            await app.users.create(f"s-{suffix}@acme.test", "superadmin", user=world.admin)
        with pytest.raises(Forbidden):
            await app.users.set_role(user.id, "superadmin", user=world.admin)
        assert (await app.users.set_role(user.id, "admin", user=world.admin)).role == "admin"
        assert [u.id for u in (await app.users.search(user=world.member)).items] == [
            world.member.id
        ]
        with pytest.raises(Forbidden):
            await app.users.get(world.admin.id, user=world.member)
        # Domains: superadmin only; an admin sees their own.
        with pytest.raises(Forbidden):
            await app.domains.create(f"d-{suffix}", user=world.admin)
        assert [d.name for d in (await app.domains.search(user=world.admin)).items] == ["acme"]
        # Renaming and removing a group (its dotfiles and memberships go with it).
        renamed = await app.groups.rename(mine.id, f"r-{suffix}", user=world.admin)
        assert renamed.name == f"r-{suffix}"
        await app.dotfiles.create(mine.id, DotfileSpec(".x", "x"), user=world.admin)
        await app.groups.purge(mine.id, user=world.admin)
        with pytest.raises(GroupNotFound):
            await app.dotfiles.search(mine.id, user=ROOT)
        await app.users.purge(user.id, user=world.admin)
        await app.users.purge(foreign.id, user=ROOT)

    h.run(scenario())


# -- the plugin and its commands ------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_the_plugin_runs_over_the_db_service_which_applies_its_migration(
    meta: MetaService, db_url: str
) -> None:
    meta.add_service_builder("db", DbService)
    meta.add_service_builder("group_config", GroupConfigService)
    environ = {
        "JASECI_LIKE__DB__URL": db_url,
        "JASECI_LIKE__GROUP_CONFIG__MAX_DOTFILES": "3",
        "JASECI_LIKE__GROUP_CONFIG__DEFAULT_DOMAIN": "home",
    }
    hook = MemoryHook(ConfigLayers(environ=environ))
    hook.meta = meta
    meta.start_services(hook, ["group_config"])
    service = hook.group_config
    assert service.is_running(), service.error
    assert service.health()
    assert meta.get_service("db").is_running()
    api = service.app.sync
    root = service.app.system_user()
    group = api.groups.create("research", user=root)  # the default domain exists already
    assert group.domain == "home"
    for n in range(3):
        api.dotfiles.create(group.id, DotfileSpec(f".f{n}", "d"), user=root)
    with pytest.raises(DotfileLimitExceeded):
        api.dotfiles.create(group.id, DotfileSpec(".f3", "d"), user=root)
    assert [d.path for d in api.dotfiles.search("research", user=root).page.items] == [
        ".f0",
        ".f1",
        ".f2",
    ]
    meta.stop_all()
    assert not service.is_running()


def test_a_bad_config_is_refused_with_the_key_named(meta: MetaService) -> None:
    meta.add_service_builder("group_config", GroupConfigService)
    hook = MemoryHook(ConfigLayers(environ={"JASECI_LIKE__GROUP_CONFIG__RETRY__ATTEMPTS": "0"}))
    service = GroupConfigService(hook)
    assert service.error is not None
    assert "attempts" in str(service.error)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _refused(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert "Traceback" not in result.stderr


def test_the_commands_work_in_a_subprocess(cli: Cli) -> None:
    _ok(cli.run("domains", "create", "acme"))
    group_id = _ok(cli.run("groups", "create", "research", "--domain", "acme")).split()[0]
    assert uuid.UUID(group_id)
    _ok(cli.run("users", "create", "member@acme.test", "--domain", "acme"))
    _ok(cli.run("groups", "add-member", "research", "member@acme.test", "--domain", "acme"))
    out = _ok(cli.run("dotfiles", "create", group_id, ".bashrc", "--data", "echo 'hi'; -- x"))
    assert "leftover_space: " in out
    listing = _ok(cli.run("dotfiles", "list", "research", "--domain", "acme"))
    rows = parse_table(listing.splitlines())
    assert [(r["PATH"], r["PERM"]) for r in rows] == [(".bashrc", "644")]
    as_member = ("--domain", "acme", "--as", "member@acme.test")
    assert _ok(cli.run("dotfiles", "get", "research", ".bashrc", *as_member)) == "echo 'hi'; -- x"
    _refused(cli.run("dotfiles", "delete", "research", ".bashrc", *as_member), 7, "may not")
    _refused(cli.run("dotfiles", "create", group_id, ".ssh", "--data", "k"), 10, "reserved")
    _refused(cli.run("dotfiles", "get", "nope", ".bashrc", "--domain", "acme"), 8, "no group")
    _ok(cli.run("dotfiles", "update", group_id, ".bashrc", "--perm", "600"))
    doc = json.loads(_ok(cli.run("dotfiles", "get", group_id, ".bashrc", "--json")))
    assert (doc["permission"], doc["data"]) == ("600", "echo 'hi'; -- x")
    _ok(cli.run("dotfiles", "delete", group_id, ".bashrc", "--purge"))
    _refused(cli.run("dotfiles", "get", group_id, ".bashrc"), 8, "no dotfile")


def test_the_commands_work_on_postgres(cli: Cli, postgres_url: str) -> None:
    env = {"JASECI_LIKE__DB__URL": postgres_url}
    group_id = _ok(cli.run("groups", "create", "research", env=env)).split()[0]
    _ok(cli.run("dotfiles", "create", "research", ".vimrc", "--data", "set nu", env=env))
    _refused(cli.run("dotfiles", "create", group_id, ".vimrc", "--data", "x", env=env), 9, "exists")
    assert _ok(cli.run("dotfiles", "get", group_id, ".vimrc", env=env)) == "set nu"
