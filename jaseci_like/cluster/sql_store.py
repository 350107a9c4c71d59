"""The cluster store in the database (PostgreSQL, or SQLite on one machine): all its SQL.

The lease is a row with a holder, a fencing token and an expiry, taken by one
conditional ``UPDATE`` (free, expired, or already ours). One implementation for
both databases, chosen over a PostgreSQL advisory lock because a session lock
holds as long as its connection lives, so a leader that hangs with the
connection open would keep it forever, and it carries no fencing token; the row
expires by itself within ``lease`` seconds and its token fences a late writer.
Times come from the database's clock (``clock_timestamp()``; SQLite's
``julianday('now')``, one machine), never from the callers'.

The tables are created by the db service's migration ``0002_cluster``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text

from jaseci_like.cluster.store import Holder, Seen

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from jaseci_like.loop import RuntimeLoop

T = TypeVar("T")
_NOW = {
    "postgresql": "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
#: Seconds a request and its answers are kept.
KEEP = 3600.0


class SqlStore:
    """Tables ``jaseci_like_instances``, ``_leases``, ``_claims`` and ``_requests``."""

    def __init__(self, engine: AsyncEngine, loop: RuntimeLoop) -> None:
        self.engine = engine
        self.loop = loop
        dialect = engine.dialect.name
        if dialect not in _NOW:
            raise ValueError(f"the cluster store supports PostgreSQL and SQLite, not {dialect}")
        self.kind = dialect
        self._now = _NOW[dialect]

    def _sql(self, statement: str) -> Any:
        return text(statement.replace("NOW", self._now))

    def _run(self, work: Callable[[AsyncConnection], Coroutine[Any, Any, T]]) -> T:
        async def transaction() -> T:
            async with self.engine.begin() as conn:
                return await work(conn)

        return self.loop.run(transaction())

    # -- instances ------------------------------------------------------------------------
    def put_instance(self, instance_id: str, record: dict[str, Any]) -> None:
        statement = self._sql(
            "INSERT INTO jaseci_like_instances (id, record, seen_at) VALUES (:id, :record, NOW) "
            "ON CONFLICT (id) DO UPDATE SET record = excluded.record, seen_at = excluded.seen_at"
        )

        async def put(conn: AsyncConnection) -> None:
            await conn.execute(statement, {"id": instance_id, "record": json.dumps(record)})

        self._run(put)

    def remove_instance(self, instance_id: str) -> None:
        async def remove(conn: AsyncConnection) -> None:
            await conn.execute(
                text("DELETE FROM jaseci_like_instances WHERE id = :id"), {"id": instance_id}
            )

        self._run(remove)

    def instances(self) -> list[Seen]:
        statement = self._sql("SELECT record, NOW - seen_at FROM jaseci_like_instances")

        async def read(conn: AsyncConnection) -> list[Seen]:
            rows = await conn.execute(statement)
            return [Seen(json.loads(r[0]), max(0.0, float(r[1]))) for r in rows]

        return self._run(read)

    # -- the lease ------------------------------------------------------------------------
    def acquire(self, lease: str, holder: str, ttl: float) -> int | None:
        create = text(
            "INSERT INTO jaseci_like_leases (name, holder, token, expires_at) "
            "VALUES (:name, '', 0, 0) ON CONFLICT (name) DO NOTHING"
        )
        take = self._sql(
            "UPDATE jaseci_like_leases SET "
            "token = CASE WHEN holder = :holder THEN token ELSE token + 1 END, "
            "holder = :holder, expires_at = NOW + :ttl "
            "WHERE name = :name AND (holder = :holder OR expires_at < NOW) RETURNING token"
        )

        async def acquire(conn: AsyncConnection) -> int | None:
            await conn.execute(create, {"name": lease})
            row = await conn.execute(take, {"name": lease, "holder": holder, "ttl": float(ttl)})
            token = row.scalar_one_or_none()
            return None if token is None else int(token)

        return self._run(acquire)

    def release(self, lease: str, holder: str, token: int) -> None:
        statement = text(
            "UPDATE jaseci_like_leases SET holder = '', expires_at = 0 "
            "WHERE name = :name AND holder = :holder AND token = :token"
        )

        async def release(conn: AsyncConnection) -> None:
            await conn.execute(statement, {"name": lease, "holder": holder, "token": token})

        self._run(release)

    def holder(self, lease: str) -> Holder | None:
        statement = self._sql(
            "SELECT holder, token, expires_at - NOW FROM jaseci_like_leases "
            "WHERE name = :name AND holder <> '' AND expires_at > NOW"
        )

        async def read(conn: AsyncConnection) -> Holder | None:
            row = (await conn.execute(statement, {"name": lease})).first()
            return None if row is None else Holder(str(row[0]), int(row[1]), float(row[2]))

        return self._run(read)

    def claim(self, key: str, lease: str, holder: str, token: int, ttl: float) -> bool | None:
        # The delete first: on SQLite it takes the write lock, so the check below
        # and the insert see one state. FOR SHARE (PostgreSQL) holds off a takeover
        # of the lease until this claim is committed.
        prune = self._sql("DELETE FROM jaseci_like_claims WHERE expires_at < NOW")
        check = self._sql(
            "SELECT 1 FROM jaseci_like_leases WHERE name = :name AND holder = :holder "
            "AND token = :token AND expires_at > NOW"
            + (" FOR SHARE" if self.kind == "postgresql" else "")
        )
        insert = self._sql(
            "INSERT INTO jaseci_like_claims (name, token, expires_at) "
            "VALUES (:key, :token, NOW + :ttl) ON CONFLICT (name) DO NOTHING"
        )

        async def claim(conn: AsyncConnection) -> bool | None:
            await conn.execute(prune)
            held = await conn.execute(check, {"name": lease, "holder": holder, "token": token})
            if held.first() is None:
                return None
            done = await conn.execute(insert, {"key": key, "token": token, "ttl": float(ttl)})
            return bool(done.rowcount)

        return self._run(claim)

    # -- requests -------------------------------------------------------------------------
    def send(self, instance_id: str, request_id: str, body: dict[str, Any]) -> None:
        prune = self._sql(f"DELETE FROM jaseci_like_requests WHERE created_at < NOW - {KEEP}")
        insert = self._sql(
            "INSERT INTO jaseci_like_requests (request_id, instance_id, body, created_at) "
            "VALUES (:rid, :iid, :body, NOW)"
        )

        async def send(conn: AsyncConnection) -> None:
            await conn.execute(prune)
            await conn.execute(
                insert, {"rid": request_id, "iid": instance_id, "body": json.dumps(body)}
            )

        self._run(send)

    def receive(self, instance_id: str) -> list[tuple[str, dict[str, Any]]]:
        take = self._sql(
            "UPDATE jaseci_like_requests SET taken_at = NOW "
            "WHERE instance_id = :iid AND taken_at IS NULL "
            "RETURNING request_id, body, created_at"
        )

        async def receive(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
            taken = (await conn.execute(take, {"iid": instance_id})).all()
            rows = sorted(taken, key=lambda r: float(r[2]))
            return [(str(r[0]), dict(json.loads(r[1]))) for r in rows]

        return self._run(receive)

    def answer(self, request_id: str, instance_id: str, body: dict[str, Any]) -> None:
        statement = text(
            "UPDATE jaseci_like_requests SET answer = :answer "
            "WHERE request_id = :rid AND instance_id = :iid"
        )

        async def answer(conn: AsyncConnection) -> None:
            await conn.execute(
                statement, {"rid": request_id, "iid": instance_id, "answer": json.dumps(body)}
            )

        self._run(answer)

    def answers(self, request_id: str) -> dict[str, dict[str, Any]]:
        statement = text(
            "SELECT instance_id, answer FROM jaseci_like_requests "
            "WHERE request_id = :rid AND answer IS NOT NULL"
        )

        async def read(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
            rows = await conn.execute(statement, {"rid": request_id})
            return {str(r[0]): dict(json.loads(r[1])) for r in rows}

        return self._run(read)
