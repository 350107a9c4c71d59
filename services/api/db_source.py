"""All SQL of the api service: API keys and task owners. Each method is ONE transaction.

Authentication reads a key and its owner's role and domain in one statement
(a join with group_config's users table, which the keys refer to), so a request
costs one short read before its own operation, and none while the key is
remembered (see keys.py): on PostgreSQL, a trigger on both tables (migration
``0002_api_key_changes``) notifies :data:`KEYS_CHANNEL` of every change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from jaseci_like_services.api.models import api_keys, api_task_owners
from jaseci_like_services.api.types import (
    ApiKeyInfo,
    KeyHolder,
    KeyOwner,
    KeyRecord,
    TaskOwnerRow,
)
from jaseci_like_services.group_config.models import users
from jaseci_like_services.group_config.types import Role
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.repository import DbOps, ReadOps, WriteOps

_KEY_FOR_AUTH = (
    select(
        api_keys.c.key_hash, api_keys.c.revoked_at, users.c.id, users.c.role, users.c.domain_name
    )
    .select_from(api_keys.join(users, api_keys.c.user_id == users.c.id))
    .where(api_keys.c.id == bindparam("key_id"))
)
_KEY_WITH_DOMAIN = (
    select(api_keys, users.c.domain_name)
    .select_from(api_keys.join(users, api_keys.c.user_id == users.c.id))
    .where(api_keys.c.id == bindparam("key_id"))
)
#: The owner and revocation of one key, read inside another service's transaction.
_KEY_STATE = select(api_keys.c.user_id, api_keys.c.revoked_at).where(
    api_keys.c.id == bindparam("key_id")
)
#: In a write, FOR SHARE (PostgreSQL) holds off a concurrent revocation until it commits.
_KEY_STATE_SHARED = _KEY_STATE.with_for_update(read=True)
_REVOKE = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"), api_keys.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)
#: The NOTIFY channel of every committed change to api_keys or gc_users (PostgreSQL).
KEYS_CHANNEL = "jaseci_like_api_keys"
#: The triggers (migration 0002_api_key_changes) that notify it, by table.
_ANNOUNCING = ("api_keys_notify_api_keys", "gc_users_notify_api_keys")
_TRIGGERS = text(
    "SELECT count(*) FROM pg_trigger WHERE tgname IN (:a, :b) AND NOT tgisinternal"
).bindparams(a=_ANNOUNCING[0], b=_ANNOUNCING[1])
_INSERT_KEY = insert(api_keys)
_INSERT_OWNER = insert(api_task_owners)
_OWNER = select(api_task_owners.c.user_id).where(api_task_owners.c.task_id == bindparam("task_id"))
#: Newest first; the id breaks ties so pages never overlap.
_ALL_TASKS = select(api_task_owners).order_by(
    api_task_owners.c.created_at.desc(), api_task_owners.c.task_id
)
_TASKS_OF = _ALL_TASKS.where(api_task_owners.c.user_id == bindparam("user_id"))
_COUNT_TASKS = select(func.count()).select_from(api_task_owners)
_COUNT_TASKS_OF = _COUNT_TASKS.where(api_task_owners.c.user_id == bindparam("user_id"))
_ALL_KEYS = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
_KEYS_OF = _ALL_KEYS.where(api_keys.c.user_id == bindparam("user_id"))


def to_key_info(row: Sequence[Any]) -> ApiKeyInfo:
    key_id, user_id, label, _, created_at, revoked_at = row[:6]
    return ApiKeyInfo(key_id, user_id, label, created_at, revoked_at)


class ApiDbSource:
    """API keys and task owners on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._ops = DbOps(engine)

    async def changes_announced(self) -> bool:
        """Whether :meth:`change_stamp` can be trusted: on PostgreSQL, whether the trigger
        that announces changes is installed (a database migrated with ``db.migrate``
        off may lack it); SQLite's stamp needs none."""
        if self._ops.engine.dialect.name != "postgresql":
            return True
        async with self._ops.read_statement() as r:
            found = (await r.execute(_TRIGGERS)).scalar_one()
        return int(found) == len(_ANNOUNCING)

    def change_stamp(self) -> Hashable | None:
        """Moves with every commit that may change what a key authenticates as (see
        ``DbOps.change_stamp``)."""
        return self._ops.change_stamp(KEYS_CHANNEL)

    # -- keys -----------------------------------------------------------------------------
    async def insert_key(self, info: ApiKeyInfo, key_hash: str) -> None:
        values = {
            "id": info.id,
            "user_id": info.user_id,
            "label": info.label,
            "key_hash": key_hash,
            "created_at": info.created_at,
            "revoked_at": None,
        }
        async with self._ops.write_ops() as w:
            await w.execute(_INSERT_KEY, values)

    async def key_for_auth(self, key_id: str) -> KeyRecord | None:
        async with self._ops.read_statement() as r:
            row = (await r.execute(_KEY_FOR_AUTH, {"key_id": key_id})).first()
        if row is None:
            return None
        key_hash, revoked_at, user_id, role, domain = tuple(row)
        user = KeyHolder(user_id, Role(role), domain, key_id)
        return KeyRecord(key_hash, revoked_at is not None, user)

    @staticmethod
    async def key_state(ops: ReadOps, key_id: str) -> tuple[uuid.UUID, bool] | None:
        """Whose key ``key_id`` is and whether it was revoked, inside the caller's open
        transaction ``ops`` (a group_config operation's); None when there is none."""
        stmt = _KEY_STATE_SHARED if isinstance(ops, WriteOps) else _KEY_STATE
        row = (await ops.execute(stmt, {"key_id": key_id})).first()
        if row is None:
            return None
        user_id, revoked_at = tuple(row)
        return user_id, revoked_at is not None

    async def revoke_key(
        self, key_id: str, now: dt.datetime, check: Callable[[KeyOwner], None]
    ) -> ApiKeyInfo | None:
        """Revoke key ``key_id`` if ``check`` lets it pass; None when there is no such key.
        A key revoked already keeps the time it was first revoked."""
        async with self._ops.write_ops() as w:
            row = (await w.execute(_KEY_WITH_DOMAIN, {"key_id": key_id})).first()
            if row is None:
                return None
            owner = KeyOwner(to_key_info(row), row[-1])
            check(owner)
            if owner.info.revoked:
                return owner.info
            await w.execute(_REVOKE, {"key_id": key_id, "now": now})
            return ApiKeyInfo(
                owner.info.id, owner.info.user_id, owner.info.label, owner.info.created_at, now
            )

    async def list_keys(self, user_id: uuid.UUID | None) -> list[ApiKeyInfo]:
        async with self._ops.read_ops() as r:
            if user_id is None:
                rows = (await r.execute(_ALL_KEYS)).all()
            else:
                rows = (await r.execute(_KEYS_OF, {"user_id": user_id})).all()
        return [to_key_info(row) for row in rows]

    # -- task owners ------------------------------------------------------------------------
    async def add_task_owner(
        self, task_id: str, user_id: uuid.UUID, name: str, now: dt.datetime
    ) -> None:
        values = {"task_id": task_id, "user_id": user_id, "name": name, "created_at": now}
        async with self._ops.write_ops() as w:
            await w.execute(_INSERT_OWNER, values)

    async def task_owner(self, task_id: str) -> uuid.UUID | None:
        async with self._ops.read_ops() as r:
            row = (await r.execute(_OWNER, {"task_id": task_id})).first()
        return None if row is None else row[0]

    async def list_task_owners(
        self, user_id: uuid.UUID | None, limit: int, offset: int
    ) -> tuple[list[TaskOwnerRow], int]:
        """A page of submitted tasks (``user_id``'s, or everyone's for None), newest
        first, and how many there are in all."""
        params: dict[str, Any] = {} if user_id is None else {"user_id": user_id}
        listing = _ALL_TASKS if user_id is None else _TASKS_OF
        counting = _COUNT_TASKS if user_id is None else _COUNT_TASKS_OF
        async with self._ops.read_ops() as r:
            total = (await r.execute(counting, params)).scalar_one()
            rows = (await r.execute(listing.limit(limit).offset(offset), params)).all()
        return [TaskOwnerRow(*tuple(row)) for row in rows], int(total)

    async def ping(self) -> bool:
        async with self._ops.read_ops() as r:
            await r.execute(select(api_keys.c.id).limit(1))
        return True
