"""OrmHook: a SQL table behind the Redis and memory layers, the durable copy.

The SQL engine is the ``app`` of the service named ``sql_service`` (an async
SQLAlchemy engine) while it is running; until then (while that service itself
starts, reading its own config) the hook works as a :class:`RedisHook`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from jaseci_like.config.layers import ConfigLayers
from jaseci_like.errors import JaseciLikeError
from jaseci_like.hooks.redis import CacheWrite, RedisHook

if TYPE_CHECKING:
    import redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from jaseci_like.loop import RuntimeLoop

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreUnavailable(JaseciLikeError):
    """The durable store could not be reached; nothing was changed. Safe to retry."""

    code = "store_unavailable"
    exit_code = 7


class OrmHook(RedisHook):
    """Globs in memory, then Redis, then SQL (read-through; writes go SQL first)."""

    def __init__(
        self,
        layers: ConfigLayers | None = None,
        *,
        sql_service: str = "db",
        cache_service: str = "redis",
        engine: AsyncEngine | None = None,
        loop: RuntimeLoop | None = None,
        client: redis.Redis | None = None,
        prefix: str = "jaseci_like",
    ) -> None:
        super().__init__(layers, cache_service=cache_service, client=client, prefix=prefix)
        self.sql_service = sql_service
        self._engine = engine
        self._loop = loop
        #: What was saved while no SQL store was attached (memory and Redis only), by
        #: name, with its text: attach_sql writes these, never reading them back from
        #: memory, which a cache reset (forget_all) may have emptied meanwhile.
        self._unsynced: dict[str, str] = {}
        #: Held while deciding "no SQL yet: keep it for attach_sql" and while attach_sql
        #: takes that list, so no save falls between the two.
        self._attach_lock = threading.Lock()

    def sql(self) -> tuple[AsyncEngine, RuntimeLoop] | None:
        """The engine and loop to use now, or None while no SQL store is attached."""
        engine, loop = self._engine, self._loop
        if engine is None and self.meta is not None:
            service = self.meta.registry.background.get(self.sql_service)
            if service is not None and service.is_running():
                engine = service.app
        if engine is None:
            return None
        if loop is None:
            if self.meta is None:
                raise RuntimeError("OrmHook needs a loop, or a hook.meta to take it from")
            loop = self.meta.loop
        return engine, loop

    def _run(self, what: str, make: Any) -> Any:
        attached = self.sql()
        if attached is None:
            return None
        engine, loop = attached
        coro: Coroutine[Any, Any, Any] = make(engine)
        try:
            return loop.run(coro)
        except Exception as exc:
            if _is_transient(exc):
                raise StoreUnavailable(
                    f"the config store is unavailable ({what}); nothing was changed, "
                    f"retry when the database is back: {type(exc).__name__}"
                ) from exc
            raise

    def _load_lower(self, name: str) -> str | None:
        from jaseci_like.hooks import glob_table

        # Reached only when memory and Redis both miss: with the store down, there is
        # nothing left to serve from, and "absent" would be a lie, so it raises.
        return self._run("read", lambda e: glob_table.load(e, name))  # type: ignore[no-any-return]

    def _store_lower(self, name: str, text: str, cache: CacheWrite) -> None:
        from jaseci_like.hooks import glob_table

        with self._attach_lock:
            if self.sql() is None:
                self._unsynced[name] = text
                cache(text)
                return
        self._run("write", lambda e: glob_table.store(e, name, text, before_commit=cache))

    def _update_lower(
        self, name: str, change: Callable[[str | None], str], cache: CacheWrite
    ) -> str:
        from jaseci_like.hooks import glob_table

        with self._attach_lock:
            if self.sql() is None:
                kept = super()._update_lower(name, change, cache)
                self._unsynced[name] = kept
                return kept
        text: str = self._run(
            "write", lambda e: glob_table.update(e, name, change, before_commit=cache)
        )
        return text

    def attach_sql(self) -> None:
        """The SQL store has just started: it becomes the truth for every glob.

        What was saved before it was attached is written to it only where it has
        nothing under that name (a durable value is never overwritten by a value
        saved while starting up); then memory is dropped so reads go to the store.
        """
        from jaseci_like.hooks import glob_table

        with self._attach_lock:
            pending = dict(self._unsynced)
            self._unsynced.clear()
        for name, text in pending.items():
            if self._run("read", lambda e, n=name: glob_table.load(e, n)) is None:
                self._run("write", lambda e, n=name, t=text: glob_table.store(e, n, t))
        self.forget_all()

    def _delete_lower(self, name: str, cache: CacheWrite) -> None:
        from jaseci_like.hooks import glob_table

        with self._attach_lock:
            if self.sql() is None:
                self._unsynced.pop(name, None)
                cache(None)
                return
        self._run("delete", lambda e: glob_table.remove(e, name, before_commit=cache))

    def _names_lower(self) -> Iterable[str] | None:
        from jaseci_like.hooks import glob_table

        return self._run("list", glob_table.names)  # type: ignore[no-any-return]

    def list_glob(self) -> list[str]:
        """Every glob name. With SQL attached, what SQL holds: a name only memory or
        Redis knows (saved before SQL was attached, not yet written by attach_sql, or
        a stale copy) is not listed, so what is listed is durable."""
        names = self._names_lower()
        if names is None:
            return super().list_glob()
        return sorted(names)

    def _redis_recovered(self, client: redis.Redis) -> None:
        """With SQL as the truth, Redis is only a cache. After an outage it is emptied
        rather than trusted (anyone may have written meanwhile); when writes only
        missed a cache that was not up yet (start-up), just their copies are dropped."""
        if self.sql() is None:
            super()._redis_recovered(client)
            return
        with self._globs_lock:
            missed = sorted(self._dirty)
            self._dirty.clear()
        if self._outage:
            log.warning("Redis is back; dropping its config cache (SQL holds the truth)")
            client.delete(self.globs_key)
        elif missed:
            client.hdel(self.globs_key, *missed)
        else:
            return
        self._outage = False
        self.forget_all()
        self._announce(client, {"all": True})

    def _reconcile_missed(self, names: list[str]) -> None:
        """SQL holds these writes; Redis may hold older copies: drop them there. Before
        SQL is attached they are start-up values, which attach_sql takes care of."""
        if self.sql() is None:
            return
        done, _ = self._redis(lambda c: c.hdel(self.globs_key, *names))
        if done:
            self._redis(lambda c: self._announce(c, {"all": True}))

    @property
    def durable(self) -> bool:
        """True when saved globs reach a SQL store."""
        return self.sql() is not None


def _is_transient(exc: BaseException) -> bool:
    """Connection lost, database locked, serialization failure: worth retrying later."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)):
        return True
    return isinstance(exc, (OSError, ConnectionError, TimeoutError))
