"""Fixtures for the repository and group-config tests: real SQLite files and real
PostgreSQL databases, the group-config tables migrated in, a seeded world.

Registered by the test modules that use them (``pytest_plugins``), which also
import its helpers, so pytest cannot rewrite it: PYTEST_DONT_REWRITE. Every
async scenario runs on a :class:`RuntimeLoop`, the loop the runtime itself uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from jaseci_like_services.db import engine as engines
from jaseci_like_services.db import migrate
from jaseci_like_services.group_config import (
    CurrentUser,
    DotfileSpec,
    Group,
    GroupConfig,
    Limits,
    Role,
)
from jaseci_like_services.group_config.models import dotfiles
from jaseci_like_services.group_config.plugin import GroupConfigService
from prometheus_client import CollectorRegistry
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.loop import RuntimeLoop
from jaseci_like.repository import RetryPolicy, driver_reads_of, transaction_engines
from tests.servers import PostgresServer

T = TypeVar("T")
BACKENDS = ("sqlite", "postgres")
#: Short waits: a retry test must not take seconds.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.002, max_delay=0.02)


class BeginCounter:
    """Counts the units of work on an engine: the transactions it opens (its "begin"
    event), those of the reader paired with it (SQLite files: reads run there), and
    the one-statement reads it hands to asyncpg (PostgreSQL), which open none."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engines = transaction_engines(engine)
        self.reads = driver_reads_of(engine)
        self.count = 0
        for counted in self.engines:
            event.listen(counted, "begin", self._begin)
        if self.reads is not None:
            self.reads.observers.append(self._begin)

    def _begin(self, _: Any) -> None:
        self.count += 1

    def close(self) -> None:
        for counted in self.engines:
            event.remove(counted, "begin", self._begin)
        if self.reads is not None:
            self.reads.observers.remove(self._begin)


def make_engine(url: str, busy_timeout_ms: int = 10_000, pool_size: int = 5) -> AsyncEngine:
    """An engine made the way the db service makes it (BEGIN IMMEDIATE on SQLite)."""
    return engines.create_engine(
        make_url(url), echo=False, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms
    )


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'group_config.db'}"


@dataclass
class Harness:
    """One database with the tables, an app over it, and the loop it all runs on."""

    backend: str
    url: str
    loop: RuntimeLoop
    engine: AsyncEngine
    app: GroupConfig
    engines: list[AsyncEngine] = field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro, timeout=120)

    def new_app(self, engine: AsyncEngine | None = None, **kwargs: Any) -> GroupConfig:
        """Another app (own metrics) over ``engine`` (default: this harness's)."""
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("registry", CollectorRegistry())
        return GroupConfig(engine or self.engine, loop=self.loop, **kwargs)

    def extra_engine(self, **kwargs: Any) -> AsyncEngine:
        """One more engine on the same database, disposed with the harness."""
        engine = make_engine(self.url, **kwargs)
        self.engines.append(engine)
        return engine

    async def rows(self, group_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Every dotfile row of a group, whatever its status, in id order."""
        stmt = select(dotfiles).where(dotfiles.c.group_id == group_id).order_by(dotfiles.c.id)
        async with self.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(stmt)).all()]

    def close(self) -> None:
        for engine in [self.engine, *self.engines]:
            self.loop.run(engine.dispose(), timeout=30)
        self.loop.stop()


def open_harness(backend: str, url: str, limits: Limits | None = None) -> Harness:
    loop = RuntimeLoop(f"gc-test-{backend}")
    engine = make_engine(url)
    loop.run(migrate.upgrade(engine, [GroupConfigService.migrations]), timeout=60)
    app = GroupConfig(
        engine, limits=limits, retry=FAST_RETRY, registry=CollectorRegistry(), loop=loop
    )
    return Harness(backend, url, loop, engine, app)


@dataclass(frozen=True)
class World:
    """Domains acme and globex; group ``research`` of acme; one user per role."""

    group: Group
    superadmin: CurrentUser
    admin: CurrentUser
    other_admin: CurrentUser
    member: CurrentUser
    outsider: CurrentUser

    def role(self, name: str) -> CurrentUser:
        found: CurrentUser = getattr(self, name)
        return found


ROLES = ("superadmin", "admin", "other_admin", "member", "outsider")
ROOT = CurrentUser.system("acme")


async def seed_world(app: GroupConfig) -> World:
    await app.domains.create("acme", user=ROOT)
    await app.domains.create("globex", user=ROOT)
    group = await app.groups.create("research", domain="acme", user=ROOT)

    async def user(email: str, role: Role, domain: str) -> CurrentUser:
        return (await app.users.create(email, role, domain=domain, user=ROOT)).identity()

    world = World(
        group=group,
        superadmin=await user("root@acme.test", Role.SUPERADMIN, "acme"),
        admin=await user("admin@acme.test", Role.ADMIN, "acme"),
        other_admin=await user("admin@globex.test", Role.ADMIN, "globex"),
        member=await user("member@acme.test", Role.USER, "acme"),
        outsider=await user("outsider@acme.test", Role.USER, "acme"),
    )
    await app.groups.add_member(group.id, world.member.id, user=ROOT)
    return world


def _url_for(backend: str, request: pytest.FixtureRequest, folder: Path) -> str:
    if backend == "sqlite":
        return sqlite_url(folder)
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=BACKENDS)
def gc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """A fresh database (SQLite file or PostgreSQL) with the tables, for one test."""
    backend: str = request.param
    harness = open_harness(backend, _url_for(backend, request, tmp_path))
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def world(gc: Harness) -> World:
    return gc.run(seed_world(gc.app))


@dataclass
class Shared:
    """A harness and world kept for a whole module; ``reset`` restores the dotfiles."""

    harness: Harness
    world: World

    SEED = (DotfileSpec(".seed", "seed data", "644"), DotfileSpec(".other", "x", "600"))

    def reset(self) -> None:
        async def reset() -> None:
            app, group = self.harness.app, self.world.group
            rows = await self.harness.rows(group.id)
            paths = sorted({row[2] for row in rows})
            if paths:
                await app.dotfiles.batch_purge(group.id, paths, user=ROOT)
            for spec in self.SEED:
                await app.dotfiles.create(group.id, spec, user=ROOT)

        self.harness.run(reset())


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    """One database per backend for a module of many small cases."""
    backend: str = request.param
    database = None
    server: PostgresServer | None = None
    if backend == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("gc-shared"))
    else:
        server = request.getfixturevalue("postgres_server")
        server.start()
        database = f"t_{uuid.uuid4().hex}"
        url = server.create_database(database)
    harness = open_harness(backend, url)
    try:
        yield Shared(harness, harness.run(seed_world(harness.app)))
    finally:
        harness.close()
        if server is not None and database is not None:
            server.drop_database(database)
