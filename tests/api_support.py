"""Helpers for the API tests: a runtime serving the API on loopback, keys, HTTP clients.

Not a pytest plugin (the test modules import it, so pytest cannot rewrite it):
asserts that could be puzzling carry their own message.

``ApiRig`` is the real thing: :class:`jaseci_like.Runtime` with every installed
plugin, its own database (an SQLite file in a temporary folder, or a PostgreSQL
database), the API on a free port of 127.0.0.1, and httpx clients talking to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from jaseci_like_services.api.service import ApiService
from jaseci_like_services.group_config import CurrentUser, DotfileSpec, GroupConfig
from jaseci_like_services.group_config.models import dotfiles
from jaseci_like_services.task import TaskService
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like import MetaService, Runtime
from jaseci_like.config.sources import ENV_PREFIX
from tests.group_config_fixtures import ROOT, World, seed_world

T = TypeVar("T")
#: Seconds any single wait may take before the test fails (a safety net).
WAIT = 30.0
#: The SQLite file the db service makes in its data directory.
SQLITE_FILE = "jaseci_like.db"
ROLES = ("superadmin", "admin", "other_admin", "member", "outsider")


def settings_env(settings: Mapping[str, str]) -> dict[str, str]:
    """``{"api.port": "0"}`` as ``{"JASECI_LIKE__API__PORT": "0"}``."""
    return {ENV_PREFIX + key.upper().replace(".", "__"): value for key, value in settings.items()}


@dataclass
class ApiRig:
    runtime: Runtime
    data_dir: Path
    keys: dict[str, str] = field(default_factory=dict)
    world: World | None = None

    @property
    def api(self) -> ApiService:
        service = self.runtime.meta.get_service("api")
        assert isinstance(service, ApiService)
        return service

    @property
    def url(self) -> str:
        url = self.api.url
        assert url is not None, f"the api is not serving: {self.api.error}"
        return url

    @property
    def app(self) -> GroupConfig:
        app: GroupConfig = self.runtime.meta.get_service("group_config").app
        return app

    @property
    def tasks(self) -> TaskService:
        service = self.runtime.meta.get_service("task")
        assert isinstance(service, TaskService)
        return service

    @property
    def engine(self) -> AsyncEngine:
        engine: AsyncEngine = self.runtime.meta.get_service("db").app
        return engine

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / SQLITE_FILE

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runtime.meta.loop.run(coro, timeout=WAIT)

    def issue_key(self, user: CurrentUser | uuid.UUID) -> str:
        """A fresh key for ``user``, issued by the local operator."""
        user_id = user.id if isinstance(user, CurrentUser) else user
        keys = self.api.keys
        assert keys is not None
        return self.run(keys.issue(user_id, actor=ROOT)).token

    def seed(self) -> World:
        """Domains acme and globex, group acme/research, one user (and key) per role."""
        world = self.run(seed_world(self.app))
        self.world = world
        for role in ROLES:
            self.keys[role] = self.issue_key(world.role(role))
        return world

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=WAIT)

    def as_role(self, role: str) -> httpx.Client:
        return self.client(self.keys[role])

    def rows(self, group_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Every dotfile row of a group (deleted ones too), in id order."""

        async def read() -> list[tuple[Any, ...]]:
            stmt = select(dotfiles).where(dotfiles.c.group_id == group_id).order_by(dotfiles.c.id)
            async with self.engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(stmt)).all()]

        return self.run(read())

    def reset_dotfiles(self, group_id: uuid.UUID, *specs: DotfileSpec) -> None:
        """Only ``specs`` in the group afterwards (history purged too)."""

        async def reset() -> None:
            paths = sorted({row[2] for row in await self._rows(group_id)})
            if paths:
                await self.app.dotfiles.batch_purge(group_id, paths, user=ROOT)
            for spec in specs:
                await self.app.dotfiles.create(group_id, spec, user=ROOT)

        self.run(reset())

    async def _rows(self, group_id: uuid.UUID) -> list[tuple[Any, ...]]:
        stmt = select(dotfiles).where(dotfiles.c.group_id == group_id)
        async with self.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(stmt)).all()]

    def close(self) -> None:
        self.runtime.stop(timeout=10.0)


@contextmanager
def api_rig(
    data_dir: Path, db_url: str | None = None, settings: Mapping[str, str] | None = None
) -> Iterator[ApiRig]:
    """A started runtime serving the API on a free loopback port; stopped afterwards."""
    environ = settings_env({"db.data_dir": str(data_dir), "api.port": "0", **(settings or {})})
    if db_url is not None:
        environ.update(settings_env({"db.url": db_url}))
    runtime = Runtime(meta=MetaService.isolated(), environ=environ)
    rig = ApiRig(runtime, data_dir)
    try:
        runtime.start()
        yield rig
    finally:
        rig.close()


def error_of(response: httpx.Response) -> tuple[int, str]:
    """``(status, code)`` of an error answer, which must be JSON ``{code, message}``."""
    body = response.json()
    assert set(body) == {"code", "message"}, f"not an error body: {body}"
    assert isinstance(body["code"], str) and isinstance(body["message"], str), body
    return response.status_code, body["code"]
