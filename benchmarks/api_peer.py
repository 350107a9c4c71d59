"""The peer baseline of the API figures: the same endpoints, hand-written.

What a competent user writes without this runtime, with FastAPI and SQLAlchemy
(Core, async: aiosqlite or asyncpg) over the same tables: a connection per
request from a dependency; the key looked up by id and hash with its owner;
the group resolved with the caller's membership; the group's usage; the page.
Writes lock the group row, check the limits and the path, insert, commit.
Response bodies are pydantic models of the same shape as ours, so a listing
answers the same bytes (the benchmark checks it).

It imports nothing from the runtime: it is the code a user would have instead.
"""

# No `from __future__ import annotations`: FastAPI reads the parameter annotations,
# and they name dependencies local to ``create_peer_app``.
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class Dotfile(BaseModel):
    id: int
    group_id: uuid.UUID
    path: str
    permission: str
    data: str
    status: Literal["active", "deleted"]
    created_at: dt.datetime
    updated_at: dt.datetime


class DotfileList(BaseModel):
    total_count: int | None
    has_next: bool
    has_previous: bool
    next_cursor: str | None = None
    previous_cursor: str | None = None
    items: list[Dotfile]
    leftover_space: int


class DotfileCreate(BaseModel):
    data: str
    permission: str = Field(default="644", pattern=r"^[0-7]{3}$")


class DotfileWritten(BaseModel):
    dotfile: Dotfile
    leftover_space: int


USER = text(
    "SELECT u.id, u.role, u.domain_name FROM api_keys k JOIN gc_users u ON u.id = k.user_id "
    "WHERE k.id = :key_id AND k.key_hash = :key_hash AND k.revoked_at IS NULL"
)
GROUP = text(
    "SELECT g.id, g.domain_name, EXISTS (SELECT 1 FROM gc_memberships m "
    "WHERE m.group_id = g.id AND m.user_id = :user_id) AS is_member "
    "FROM gc_groups g WHERE g.domain_name = :domain AND g.name = :name"
)
USAGE = text(
    "SELECT count(*), coalesce(sum(path_bytes + data_bytes), 0), "
    "coalesce(sum(CASE WHEN path = :path THEN 1 ELSE 0 END), 0) "
    "FROM gc_dotfiles WHERE group_id = :group_id AND status = 'active'"
)
PAGE = text(
    "SELECT id, group_id, path, permission, data, status, created_at, updated_at "
    "FROM gc_dotfiles WHERE group_id = :group_id AND status = 'active' "
    "ORDER BY id LIMIT :limit OFFSET :offset"
)
INSERT = text(
    "INSERT INTO gc_dotfiles (group_id, path, permission, data, status, path_bytes, "
    "data_bytes, created_at, updated_at) VALUES (:group_id, :path, :permission, :data, "
    "'active', :path_bytes, :data_bytes, :now, :now) "
    "RETURNING id, group_id, path, permission, data, status, created_at, updated_at"
)


def utc(value: Any) -> dt.datetime:
    moment: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def dotfile(row: Any) -> Dotfile:
    id_, gid, path, permission, data, status, created, updated = row
    return Dotfile(
        id=id_,
        group_id=uuid.UUID(str(gid)),
        path=path,
        permission=permission,
        data=data,
        status=status,
        created_at=utc(created),
        updated_at=utc(updated),
    )


def create_peer_app(engine: AsyncEngine, max_dotfiles: int, max_bytes: int) -> FastAPI:
    """The hand-written app over ``engine`` (the runtime's database, its tables)."""
    app = FastAPI()
    sqlite = engine.dialect.name == "sqlite"
    lock = "" if sqlite else " FOR UPDATE OF g"

    def group_id(value: Any) -> Any:
        # SQLite keeps UUIDs as 32 hex digits (SQLAlchemy's Uuid type), as rows give them.
        return value.hex if sqlite and isinstance(value, uuid.UUID) else value

    async def connection() -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn:
            yield conn

    Conn = Annotated[AsyncConnection, Depends(connection)]

    async def caller(conn: Conn, authorization: Annotated[str, Header()] = "") -> Any:
        token = authorization.removeprefix("Bearer ")
        key_id = token.split("_")[1] if token.count("_") >= 2 else ""
        key_hash = hashlib.sha256(token.encode()).hexdigest()
        params = {"key_id": key_id, "key_hash": key_hash}
        user = (await conn.execute(USER, params)).first()
        if user is None:
            raise HTTPException(401, "not a valid key")
        return user

    User = Annotated[Any, Depends(caller)]

    async def resolve(conn: AsyncConnection, user: Any, name: str, write: bool) -> Any:
        params = {"user_id": group_id(user.id), "domain": user.domain_name, "name": name}
        found = (await conn.execute(text(GROUP.text + (lock if write else "")), params)).first()
        if found is None:
            raise HTTPException(404, "no such group")
        admin = user.role == "admin" and user.domain_name == found.domain_name
        if user.role != "superadmin" and not admin and (write or not found.is_member):
            raise HTTPException(403, "forbidden")
        return found

    @app.get("/v1/groups/{group}/dotfiles", response_model=DotfileList)
    async def listing(
        group: str, conn: Conn, user: User, limit: int = 100, offset: int = 0
    ) -> DotfileList:
        found = await resolve(conn, user, group, write=False)
        gid = group_id(found.id)
        count, size, _ = (await conn.execute(USAGE, {"group_id": gid, "path": ""})).one()
        params = {"group_id": gid, "limit": limit + 1, "offset": offset}
        rows = (await conn.execute(PAGE, params)).all()
        return DotfileList(
            total_count=count,
            has_next=len(rows) > limit,
            has_previous=offset > 0,
            items=[dotfile(row) for row in rows[:limit]],
            leftover_space=max(0, max_bytes - size),
        )

    @app.put(
        "/v1/groups/{group}/dotfiles/{path:path}",
        status_code=201,
        response_model=DotfileWritten,
    )
    async def create(
        group: str, path: str, body: DotfileCreate, conn: Conn, user: User
    ) -> DotfileWritten:
        found = await resolve(conn, user, group, write=True)
        gid = group_id(found.id)
        usage = {"group_id": gid, "path": path}
        count, size, taken = (await conn.execute(USAGE, usage)).one()
        path_bytes, data_bytes = len(path.encode()), len(body.data.encode())
        if taken:
            raise HTTPException(409, "the path exists")
        if count + 1 > max_dotfiles or size + path_bytes + data_bytes > max_bytes:
            raise HTTPException(400, "over the group's limits")
        now = dt.datetime.now(dt.UTC)
        values = {
            "group_id": gid,
            "path": path,
            "permission": body.permission,
            "data": body.data,
            "path_bytes": path_bytes,
            "data_bytes": data_bytes,
            "now": now.replace(tzinfo=None) if sqlite else now,
        }
        row = (await conn.execute(INSERT, values)).one()
        await conn.commit()  # the key check began the transaction
        left = max(0, max_bytes - size - path_bytes - data_bytes)
        return DotfileWritten(dotfile=dotfile(row), leftover_space=left)

    return app
