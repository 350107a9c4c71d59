"""Cross-process invalidation of config memory copies, over one Redis channel.

Each change is announced as a JSON message carrying the sender's id and the
next value of a version counter kept in Redis. A process that sees the version
jump (it missed messages: a dropped connection, a Redis restart) drops its whole
memory copy; so does one that finds, on subscribing, a version or an epoch (a
random id stored once per Redis dataset) other than the last it saw. A Redis
that lost its data therefore never passes its fresh counter off as the old one.

The protocol knows nothing of where globs are kept: it tells the
:class:`Forgetting` cache it serves (the :class:`~jaseci_like.hooks.redis.RedisHook`)
what to drop, and runs the handlers registered for changes and refreshes.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)


class Forgetting(Protocol):
    """The memory copy that invalidation messages act on."""

    def forget(self, name: str) -> None: ...

    def forget_all(self) -> None: ...

    def resync(self) -> None:
        """Called between messages: a chance to put Redis right after an outage."""
        ...


class Invalidation:
    """Announces changes to, and applies the announcements of, every process that
    shares a Redis under ``prefix``."""

    def __init__(self, prefix: str, cache: Forgetting) -> None:
        self.version_key = f"{prefix}:globs:version"
        #: A random id the first listener stores; a Redis that lost its data (a restart
        #: without persistence, FLUSHALL) has a new one, so its fresh version counter
        #: is never mistaken for the old one.
        self.epoch_key = f"{prefix}:globs:epoch"
        self.channel = f"{prefix}:config"
        self.sender = uuid.uuid4().hex
        self._cache = cache
        self._seen_version: int | None = None
        self._seen_epoch: str | None = None
        self._refresh_handlers: list[Callable[[str], None]] = []
        self._change_handlers: list[Callable[[str], None]] = []

    def on_refresh(self, handler: Callable[[str], None]) -> None:
        """Call ``handler(config_name)`` when any process broadcasts a refresh."""
        self._refresh_handlers.append(handler)

    def on_change(self, handler: Callable[[str], None]) -> None:
        """Call ``handler(glob_name)`` (in the listener thread; keep it short) when
        another process changes a glob; ``"*"`` when everything may have changed."""
        self._change_handlers.append(handler)

    def announce(self, client: redis.Redis, message: dict[str, Any]) -> None:
        """Publish ``message`` (``name``, ``all`` or ``refresh``) to every process."""
        version = int(client.incr(self.version_key))
        payload = {**message, "sender": self.sender, "version": version}
        if self._seen_version is not None and version == self._seen_version + 1:
            # Only the very next version: skipping ahead would hide the changes of
            # other processes that the listener has not received (it may be
            # reconnecting), and catch_up would then find nothing missed.
            self._seen_version = version
        client.publish(self.channel, json.dumps(payload))

    def handle_message(self, payload: dict[str, Any]) -> None:
        """Apply one pub/sub message: invalidate, refresh, or catch up on a gap."""
        version = payload.get("version")
        if isinstance(version, int):
            seen = self._seen_version
            if seen is not None and version > seen + 1:
                self._forget_all()  # messages were missed: nothing in memory is trusted
            if seen is None or version > seen:
                self._seen_version = version
        own = payload.get("sender") == self.sender
        if payload.get("all") and not own:
            self._forget_all()
        name = payload.get("name")
        if isinstance(name, str) and not own:
            self._cache.forget(name)
            self._changed(name)
        refresh = payload.get("refresh")
        if isinstance(refresh, str):
            if not own:
                self._cache.forget(refresh)
            for handler in list(self._refresh_handlers):
                threading.Thread(
                    target=_run_refresh,
                    args=(handler, refresh),
                    name=f"refresh:{refresh}",
                    daemon=True,
                ).start()

    def catch_up(self, client: redis.Redis) -> None:
        """After (re)subscribing: drop memory if the version moved while we were away.

        The first subscription drops it too: what was read before it (services
        reading their config as they start) may have missed a change."""
        client.set(self.epoch_key, uuid.uuid4().hex, nx=True)
        epoch = str(client.get(self.epoch_key))
        raw = client.get(self.version_key)
        current = int(raw) if raw is not None else 0
        if self._seen_version is None or current != self._seen_version or epoch != self._seen_epoch:
            self._forget_all()
        self._seen_version = current
        self._seen_epoch = epoch

    def listener(self, client: redis.Redis) -> Callable[[threading.Event], None]:
        """A daemon target: subscribe to the channel until ``stop`` is set.

        Connection errors are survived (wait, resubscribe, catch up); only a bug
        escapes, and then the owning service fails with it.
        """

        def listen(stop: threading.Event) -> None:
            import redis as redis_lib

            backoff = 0.05
            while not stop.is_set():
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
                try:
                    pubsub.subscribe(self.channel)
                    self.catch_up(client)
                    backoff = 0.05
                    while not stop.is_set():
                        message = pubsub.get_message(timeout=0.2)
                        if message is not None and message.get("type") == "message":
                            self._on_raw(message.get("data"))
                        self._cache.resync()
                except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError) as exc:
                    log.debug("config listener lost Redis (%s); retrying", exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 1.0)
                finally:
                    try:
                        pubsub.close()
                    except (redis_lib.RedisError, OSError):
                        log.debug("config listener: closing a dead subscription failed")

        return listen

    def _forget_all(self) -> None:
        self._cache.forget_all()
        self._changed("*")

    def _changed(self, name: str) -> None:
        for handler in list(self._change_handlers):
            try:
                handler(name)
            except Exception:
                log.exception("change handler for %r failed", name)

    def _on_raw(self, data: Any) -> None:
        try:
            payload = json.loads(data)
        except (TypeError, ValueError):
            log.warning("ignoring a config message that is not JSON")
            return
        if isinstance(payload, dict):
            self.handle_message(payload)


def _run_refresh(handler: Callable[[str], None], name: str) -> None:
    try:
        handler(name)
    except Exception:
        log.exception("refresh of %r failed", name)
