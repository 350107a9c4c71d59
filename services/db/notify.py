"""PostgreSQL's change stamp: LISTEN on a connection of its own, a count per channel.

A cache on PostgreSQL learns of the commits that matter to it from ``NOTIFY``:
a trigger on the tables it reads notifies a channel (the api's keys:
``jaseci_like_api_keys``), and the server delivers the notification to every
listening connection when, and only if, the transaction commits, whichever
process (or ``psql``) made it. :class:`NotifyStamp` is ``DbOps.change_stamp``
on such an engine: ``(generation, notifications received on the channel)``.

The notification leaves the server as the writer's COMMIT returns, before the
writer can answer its own client, so a request that client sends next, to any
process, finds it already received. While the listening connection is not up
(the first calls, a lost server) the stamp is None and caches read every time;
each new connection starts a new generation, so what was missed meanwhile
cannot go unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

#: Seconds between two tries to listen again while the server cannot be reached.
RETRY_FIRST = 0.1
RETRY_MOST = 5.0


class NotifyStamp:
    """Counts the notifications of the channels asked for, on a connection of
    ``engine``'s that it takes out of the pool and keeps (on ``engine``'s loop)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._wanted: set[str] = set()
        #: Channels LISTENed to on the current connection.
        self._listening: set[str] = set()
        self._counts: dict[str, int] = {}
        self._generation = 0
        self._conn: Any = None  # the asyncpg connection, once listening
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False

    def __call__(self, channel: str | None = None) -> Hashable | None:
        if channel is None or self._closed:
            return None
        if channel not in self._listening:
            self._want(channel)
            return None
        conn = self._conn
        if conn is None or conn.is_closed():
            return None  # lost: the listener reconnects, under a new generation
        return self._generation, self._counts.get(channel, 0)

    def _want(self, channel: str) -> None:
        """Listen to ``channel`` too (from a call on the engine's loop; elsewhere, None
        is all the caller gets)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._wanted.add(channel)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._listen(), name="jaseci-like-db-notify")
        elif self._wake is not None:
            self._wake.set()

    async def _listen(self) -> None:
        delay = RETRY_FIRST
        while not self._closed:
            try:
                await self._serve_one_connection()
                delay = RETRY_FIRST
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "db: cannot listen for changes (%s); caches read the database "
                    "meanwhile, trying again in %.1fs",
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MOST)

    async def _serve_one_connection(self) -> None:
        """LISTEN on a new connection until it is lost (or the stamp is closed)."""
        assert self._wake is not None
        pooled = await self._engine.raw_connection()
        conn = pooled.driver_connection
        pooled.detach()  # ours for good: the pool opens another in its place
        assert conn is not None
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        self._generation += 1
        self._counts.clear()
        self._conn = conn
        try:
            while not self._closed and not conn.is_closed():
                for channel in sorted(self._wanted - self._listening):
                    await conn.add_listener(channel, self._notified)
                    self._listening.add(channel)
                self._wake.clear()
                waits = [
                    asyncio.ensure_future(lost.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for wait in waits:
                        wait.cancel()
        finally:
            self._listening.clear()
            self._conn = None
            conn.terminate()
        if not self._closed:
            log.warning("db: the connection listening for changes was lost; listening again")

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._counts[channel] = self._counts.get(channel, 0) + 1

    def close(self) -> None:
        """Stop listening (the engine is disposed; called on its loop)."""
        self._closed = True
        self._listening.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()
        if self._task is not None:
            self._task.cancel()
