"""DbService: an async SQLAlchemy engine on the runtime's shared event loop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from jaseci_like_configs import defaults
from jaseci_like_services.db import engine as engines
from jaseci_like_services.db import migrate
from pydantic import Field
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like import CommonService, CredentialUrl, MemoryHook, OrmHook, ServiceConfig
from jaseci_like.config.secrets import redact_url
from jaseci_like.loop import RuntimeLoop

log = logging.getLogger(__name__)


class DbConfig(ServiceConfig):
    url: CredentialUrl | None = None
    data_dir: str | None = None
    echo: bool = False
    pool_size: int = Field(ge=1, le=1000)
    migrate: bool = True
    busy_timeout_ms: int = Field(ge=0, le=600_000)
    #: Seconds to open a connection / to wait for a pooled one (PostgreSQL): while
    #: the server is down, calls fail within these instead of hanging.
    connect_timeout: float = Field(default=5.0, gt=0, le=600)
    pool_timeout: float = Field(default=5.0, gt=0, le=600)
    #: Seconds a pooled connection (PostgreSQL) may sit unused before its next use
    #: pings it first; 0 pings at every use.
    ping_idle_after: float = Field(default=engines.PING_IDLE_AFTER, ge=0, le=86400)


class DbService(CommonService):
    """``app`` is an ``AsyncEngine`` living on the runtime's loop. Synchronous code runs
    coroutines there with ``db.loop.run(coro)``; async code on that loop (a host that
    started the runtime with ``async with Runtime(...)``) awaits it directly. Used from
    any other loop it raises :class:`WrongLoopError` saying so, never a driver's error."""

    #: Set while the service runs (None otherwise).
    app: AsyncEngine
    name = "db"
    config_schema = DbConfig
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: DbConfig | None
    default_config: ClassVar[dict[str, Any]] = defaults("db")
    start_blocks = True

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.loop: RuntimeLoop = (
            hook.meta.loop if hook is not None and hook.meta is not None else RuntimeLoop()
        )
        self.url = ""
        self._reader: tuple[AsyncEngine, AsyncEngine] | None = None
        super().__init__(hook)

    # -- lifecycle ---------------------------------------------------------------
    def run(self, hook: MemoryHook | None = None) -> None:
        c = self.config
        url = engines.database_url(c["url"], engines.data_dir(c["data_dir"]))
        self.url = redact_url(url.render_as_string(hide_password=False))
        engine = engines.create_engine(
            url,
            echo=c["echo"],
            pool_size=c["pool_size"],
            busy_timeout_ms=c["busy_timeout_ms"],
            connect_timeout=c["connect_timeout"],
            pool_timeout=c["pool_timeout"],
            ping_idle_after=c["ping_idle_after"],
        )
        _guard_loop(engine, self.loop)
        try:
            self.loop.run(self._open(engine, c["migrate"]))
        except BaseException:
            self.loop.run(engine.dispose())
            raise
        self.app = engine

    async def _open(self, engine: AsyncEngine, apply_migrations: bool) -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        if apply_migrations:
            now = await migrate.upgrade(engine, self.migration_locations())
            log.debug("db %s at revision %s", self.url, ", ".join(sorted(now)))

    @property
    def reader(self) -> AsyncEngine:
        """``app`` for reads: the same pool, but on SQLite no transaction is opened
        (``app``'s begin with BEGIN IMMEDIATE, taking the write lock): each statement
        reads the last commit by itself, without waiting for a writer. Reads that
        must agree with each other, and every write, go through ``app``. On
        PostgreSQL it is ``app`` as it is."""
        engine: AsyncEngine = self.app
        if engine.dialect.name != "sqlite":
            return engine
        kept = self._reader
        if kept is None or kept[0] is not engine:  # one view per engine (a restart renews)
            kept = self._reader = (engine, engine.execution_options(**{engines.READ_ONLY: True}))
        return kept[1]

    def post_run(self, hook: MemoryHook | None = None) -> None:
        if isinstance(hook, OrmHook) and hook.sql_service == self.service_name():
            hook.attach_sql()

    def teardown(self) -> None:
        engine: AsyncEngine = self.app
        self.loop.run(engine.dispose(), timeout=self.stop_timeout)

    def health(self) -> bool:
        return self.app is not None and self.loop.run(self._ping(), timeout=self.health_timeout())

    def health_timeout(self) -> float:
        """``db.connect_timeout``: the ping may have to open a connection."""
        value = self.config.get("connect_timeout")
        return float(value) if isinstance(value, int | float) else super().health_timeout()

    async def _ping(self) -> bool:
        # Through the reader: on SQLite a transaction of ``app`` begins IMMEDIATE, so a
        # ping would wait behind every writer (busy under load is not down).
        async with self.reader.connect() as conn:
            return bool((await conn.execute(text("SELECT 1"))).scalar_one() == 1)

    # -- migrations ----------------------------------------------------------------
    def migration_locations(self) -> list[Path]:
        """Version folders other registered services declare (``migrations`` class attribute)."""
        meta = self.hook.meta if self.hook is not None else None
        if meta is None:
            return []
        found = []
        for name in meta.service_names():
            location = getattr(meta.builder(name), "migrations", None)
            if isinstance(location, Path):
                found.append(location)
        return found

    def upgrade(self) -> set[str]:
        """Apply pending migrations now (``jaseci-like db upgrade``)."""
        if not self.is_running():
            raise RuntimeError("the db service is not running")
        return self.loop.run(migrate.upgrade(self.app, self.migration_locations()))


def _guard_loop(engine: AsyncEngine, loop: RuntimeLoop) -> None:
    """A connection checked out on a loop other than the runtime's raises
    :class:`WrongLoopError` naming what to call instead: the driver would otherwise
    fail deep inside ("attached to a different loop") or corrupt its connection."""

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        loop.check_loop("the db engine (db.app)")
