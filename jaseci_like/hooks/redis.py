"""RedisHook: memory in front of a Redis hash, read-through and write-through.

Every process sharing the Redis learns of each change through pub/sub, so no
memory copy stays stale; a version counter lets a process that missed messages
(a dropped connection, a Redis restart) notice and drop its whole memory copy
(the protocol is :mod:`jaseci_like.hooks.invalidation`).
When Redis is down the hook keeps serving from the other layers and stops
trying Redis for ``retry_interval`` seconds at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jaseci_like.config.layers import ConfigLayers
from jaseci_like.hooks.invalidation import Invalidation
from jaseci_like.hooks.memory import GlobValue, MemoryHook, to_json

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

PREFIX = "jaseci_like"

#: Makes (text) or removes (None) the Redis copy of one glob, inside a write.
CacheWrite = Callable[[str | None], None]


class RedisHook(MemoryHook):
    """Globs in memory, then a Redis hash ``<prefix>:globs``.

    The Redis client is the ``app`` of the service named ``cache_service`` (when
    it is running), or a client given directly.
    """

    retry_interval = 0.5

    def __init__(
        self,
        layers: ConfigLayers | None = None,
        *,
        cache_service: str = "redis",
        client: redis.Redis | None = None,
        prefix: str = PREFIX,
    ) -> None:
        super().__init__(layers)
        self.cache_service = cache_service
        self._client = client
        self.globs_key = f"{prefix}:globs"
        #: The cross-process protocol: messages on its channel keep every process's
        #: memory copy current.
        self.invalidation = Invalidation(prefix, self)
        self._down_until = 0.0
        self._was_down = False
        #: Bumped on every invalidation of a name, so a slow read never caches
        #: a value that was invalidated while it was being read.
        self._generation: dict[str, int] = {}
        self._epoch = 0
        #: Names saved while Redis was unreachable; pushed to it when it returns.
        self._dirty: set[str] = set()
        #: True from a failed Redis call until Redis has been put right again
        #: (``_was_down`` is also set when writes merely missed a cache not yet up).
        self._outage = False

    # -- the Redis layer -------------------------------------------------------
    def redis_client(self) -> redis.Redis | None:
        """The client to use now, or None while Redis is absent or marked down."""
        if self._down_until and time.monotonic() < self._down_until:
            return None
        client = self._client
        if client is None and self.meta is not None:
            service = self.meta.registry.background.get(self.cache_service)
            if service is not None and service.is_running():
                client = service.app
        return client

    def _redis(self, op: Callable[[redis.Redis], Any]) -> tuple[bool, Any]:
        """Run ``op`` on Redis; (False, None) when Redis is absent or failed."""
        client = self.redis_client()
        if client is None:
            return False, None
        import redis as redis_lib

        try:
            if self._was_down:
                # Put Redis right before trusting it again: what it holds may
                # predate writes it missed.
                self._redis_recovered(client)
                self._was_down = False
            result = op(client)
        except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError) as exc:
            self._redis_failed(exc)
            return False, None
        return True, result

    def _redis_failed(self, exc: BaseException) -> None:
        if not self._outage:
            log.warning("Redis unavailable, serving from the other layers: %s", exc)
        self._was_down = True
        self._outage = True
        self._down_until = time.monotonic() + self.retry_interval

    def _redis_recovered(self, client: redis.Redis) -> None:
        """Redis is back after an outage: push what was saved meanwhile, drop the rest
        of memory (other processes may have changed it), and tell every process."""
        if self._outage:
            log.warning("Redis is back; resynchronizing the config cache")
        self._outage = False
        with self._globs_lock:
            pending: dict[str | bytes | bytearray | memoryview | int | float, Any] = {
                n: self._globs[n] for n in self._dirty if n in self._globs
            }
            deleted = [n for n in self._dirty if n not in self._globs]
        if pending:
            client.hset(self.globs_key, mapping=pending)
        if deleted:
            client.hdel(self.globs_key, *deleted)
        with self._globs_lock:
            self._dirty.clear()
            kept = {n: t for n, t in self._globs.items() if n in pending}
            self._globs.clear()
            self._globs.update(kept)
            self._epoch += 1
        self._announce(client, {"all": True})

    def attach_cache(self) -> None:
        """The cache service has just (re)started: read through it from now on, like
        every other process. Writes that missed it meanwhile (it was down, or not
        yet up) are reconciled first, so it serves none of their older copies."""
        with self._globs_lock:
            missed = sorted(self._dirty)
            self._dirty.clear()
        if missed:
            self._reconcile_missed(missed)
        self.forget_all()

    def _reconcile_missed(self, names: list[str]) -> None:
        """Without SQL, Redis is the shared copy: add what only memory has, never
        over a value another process stored there meanwhile."""
        with self._globs_lock:
            held = {n: self._globs[n] for n in names if n in self._globs}
        if held:
            key = self.globs_key

            def add(client: redis.Redis) -> None:
                for name, text in held.items():
                    client.hsetnx(key, name, text)

            self._redis(add)

    def _announce(self, client: redis.Redis, message: dict[str, Any]) -> None:
        self.invalidation.announce(client, message)

    # -- lower layers (OrmHook adds SQL) ------------------------------------------
    def _load_lower(self, name: str) -> str | None:
        return None

    def _store_lower(self, name: str, text: str, cache: CacheWrite) -> None:
        """Write ``text`` durably; call ``cache(text)`` before the write is final."""
        cache(text)

    def _update_lower(
        self, name: str, change: Callable[[str | None], str], cache: CacheWrite
    ) -> str:
        """Read, change, write ``name`` as one step; call ``cache`` before it is final."""
        with self._name_lock(name):
            text = change(self.get_glob(name))
            cache(text)
            return text

    def _delete_lower(self, name: str, cache: CacheWrite) -> None:
        cache(None)

    @contextmanager
    def _name_lock(self, name: str) -> Iterator[None]:
        """This process's lock on ``name``, plus Redis's when Redis is reachable
        (without SQL, Redis is the only place other processes meet)."""
        import redis as redis_lib

        with self._update_lock:
            client = self.redis_client()
            lock = None
            if client is not None:
                lock = client.lock(f"{self.globs_key}:lock:{name}", timeout=10, blocking_timeout=5)
                try:
                    lock.acquire()
                except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError) as exc:
                    self._redis_failed(exc)
                    lock = None
            try:
                yield
            finally:
                if lock is not None:
                    try:
                        lock.release()
                    except (redis_lib.RedisError, OSError):
                        log.debug("releasing the Redis lock of %r failed; it expires", name)

    def _names_lower(self) -> Iterable[str] | None:
        return None

    # -- globs -------------------------------------------------------------------
    def get_glob(self, name: str) -> str | None:
        text = self._globs.get(name)
        if text is not None:
            return text
        generation = (self._epoch, self._generation.get(name, 0))
        ok, raw = self._redis(lambda c: c.hget(self.globs_key, name))
        if ok and raw is not None:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            self._remember(name, text, generation)
            return text
        text = self._load_lower(name)
        if text is not None:
            self._remember(name, text, generation)
            if ok:  # repopulate, never over a newer value another process wrote
                self._redis(lambda c: c.hsetnx(self.globs_key, name, text))
        return text

    def _remember(self, name: str, text: str, generation: tuple[int, int]) -> None:
        with self._globs_lock:
            if generation == (self._epoch, self._generation.get(name, 0)):
                self._globs[name] = text

    def save_glob(self, name: str, value: GlobValue) -> None:
        text = to_json(name, value)

        def store(cache: CacheWrite) -> str:
            self._store_lower(name, text, cache)
            return text

        self._write(name, store)

    def update_glob(self, name: str, change: Callable[[str | None], GlobValue]) -> str:
        def checked(current: str | None) -> str:
            return to_json(name, change(current))

        text = self._write(name, lambda cache: self._update_lower(name, checked, cache))
        assert text is not None
        return text

    def destroy_glob(self, name: str) -> None:
        self._write(name, lambda cache: self._delete_lower(name, cache))

    def _write(self, name: str, write: Callable[[CacheWrite], str | None]) -> str | None:
        """Run ``write`` (the durable layer) with the Redis copy made inside it, before
        its commit: concurrent writers then reach Redis in commit order. If the write
        fails after the copy was made, the copy is taken out again. Other processes
        are told after the commit; memory is updated last."""
        generation = (self._epoch, self._generation.get(name, 0))
        reached = False

        def cache(text: str | None) -> None:
            nonlocal reached
            if text is None:
                reached, _ = self._redis(lambda c: c.hdel(self.globs_key, name))
            else:
                reached, _ = self._redis(lambda c: c.hset(self.globs_key, name, text))

        try:
            text = write(cache)
        except BaseException:
            if reached:
                self._redis(lambda c: c.hdel(self.globs_key, name))
            raise
        if reached:
            self._redis(lambda c: self._announce(c, {"name": name}))
        with self._globs_lock:
            if text is not None and generation == (self._epoch, self._generation.get(name, 0)):
                self._globs[name] = text
            else:  # deleted, or another process changed it meanwhile (maybe newer)
                self._globs.pop(name, None)
            self._generation[name] = self._generation.get(name, 0) + 1
            if not reached:
                self._dirty.add(name)  # Redis missed it: put right when Redis returns
        return text

    def has_glob(self, name: str) -> bool:
        return self.get_glob(name) is not None

    def list_glob(self) -> list[str]:
        names = set(self._globs)
        lower = self._names_lower()
        if lower is not None:
            return sorted(names | set(lower))
        ok, keys = self._redis(lambda c: c.hkeys(self.globs_key))
        if ok:
            names.update(k.decode() if isinstance(k, bytes) else str(k) for k in keys)
        return sorted(names)

    # -- invalidation ---------------------------------------------------------------
    def forget(self, name: str) -> None:
        """Drop the memory copy of ``name``; the next read goes to the lower layers."""
        with self._globs_lock:
            self._globs.pop(name, None)
            self._generation[name] = self._generation.get(name, 0) + 1

    def forget_all(self) -> None:
        with self._globs_lock:
            self._globs.clear()
            self._epoch += 1

    def on_refresh(self, handler: Callable[[str], None]) -> None:
        """Call ``handler(config_name)`` when any process broadcasts a refresh."""
        self.invalidation.on_refresh(handler)

    def on_change(self, handler: Callable[[str], None]) -> None:
        """Call ``handler(glob_name)`` (in the listener thread; keep it short) when
        another process changes a glob; ``"*"`` when everything may have changed."""
        self.invalidation.on_change(handler)

    def broadcast_refresh(self, name: str) -> bool:
        """Ask every process sharing the Redis (this one included) to refresh ``name``."""
        ok, _ = self._redis(lambda c: self._announce(c, {"refresh": name}))
        return ok

    def handle_message(self, payload: dict[str, Any]) -> None:
        """Apply one pub/sub message (see :class:`Invalidation`)."""
        self.invalidation.handle_message(payload)

    def catch_up(self, client: redis.Redis) -> None:
        """After (re)subscribing: drop memory if the version moved while we were away."""
        self.invalidation.catch_up(client)

    def resync(self) -> None:
        """Redis failed earlier: once it answers again, announce what was saved
        meanwhile. The listener calls this, so it happens even when this process
        makes no further call that would notice (reads served from memory)."""
        if self._was_down and time.monotonic() >= self._down_until:
            self._redis(lambda c: c.ping())

    def listener(self, client: redis.Redis) -> Callable[[threading.Event], None]:
        """A daemon target: follow the other processes' changes until ``stop`` is set."""
        return self.invalidation.listener(client)
