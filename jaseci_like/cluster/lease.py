"""Leadership: one instance of the system holds the lease; singleton duties run there.

Duties that must happen once per system (beat's periodic tasks, JsOrc, the
supervisor's cluster-wide actions) ask :func:`is_leader` before acting, or
subscribe with :meth:`Leadership.on_change`. Work that must happen once per
unit (a beat tick) is also claimed with :meth:`Leadership.claim`, fenced by the
lease's token, so even a leader that was paused past its lease and has not
noticed yet cannot do it a second time.

Where the lease lives (see the stores): a lease row in the database with an
expiry and a token when the db service is on, else Redis (a ``SET NX PX`` lock
whose value carries a token from ``INCR``). A standby tries every
``retry_every`` seconds, and once it has seen when the holder's lease runs out,
tries again right then (a dead leader is replaced as soon as its lease ends, not
up to ``retry_every`` later); the holder renews every ``lease / 3`` and treats the
lease as lost a little before it expires on the store, if renewals fail.

    not leading --acquire ok--> leading --renew ok--> leading
         ^                         |
         +--- renew refused, or no renewal before the lease runs out

>>> from jaseci_like.cluster import is_leader
>>> from jaseci_like import MetaService
>>> is_leader(MetaService.isolated())  # a bare registry is alone: it leads
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jaseci_like.cluster.config import ClusterConfig
from jaseci_like.cluster.store import LEADER_LEASE, ClusterStore
from jaseci_like.supervisor import describe_failure

if TYPE_CHECKING:
    from jaseci_like.meta import MetaService

log = logging.getLogger(__name__)

#: Seconds before the lease's end at which a holder that could not renew stops
#: leading: the store's clock and ours may tick at slightly different rates.
_MARGIN = 0.1
#: Seconds after a holder's lease ends at which a standby tries to take it: the
#: store must see it expired (``expires_at < now``), not merely due.
_AFTER_EXPIRY = 0.005


class Leadership:
    """This instance's standing for the system's lease (``is_leader``, ``token``)."""

    def __init__(
        self,
        holder: str,
        store: Callable[[], ClusterStore],
        config: ClusterConfig | None = None,
        lease: str = LEADER_LEASE,
    ) -> None:
        self.holder = holder
        self.lease = lease
        self.config = config or ClusterConfig()
        self._store = store
        self._lock = threading.Lock()
        self._token: int | None = None
        self._valid_until = 0.0
        self._leading = False
        self._handlers: list[Callable[[bool], None]] = []
        self._failing = False
        #: Names of the duties that run here when this instance leads (for ``status``).
        self.duties: set[str] = set()

    def store(self) -> ClusterStore:
        """The store the lease (and the instance registry) lives in."""
        return self._store()

    # -- asking -----------------------------------------------------------------------------
    def is_leader(self, duty: str | None = None) -> bool:
        """True while this instance holds the lease (every duty runs on the one leader;
        ``duty`` names the asker, which ``status`` then lists)."""
        if duty is not None:
            self.duties.add(duty)
        with self._lock:
            return self._token is not None and time.monotonic() < self._valid_until

    @property
    def store_unreachable(self) -> bool:
        """True while the store the lease lives in does not answer: then no instance
        can lead (a duty whose job is to bring that store back may act anyway)."""
        return self._failing

    @property
    def token(self) -> int | None:
        """The fencing token of the lease held now, or None."""
        with self._lock:
            live = self._token is not None and time.monotonic() < self._valid_until
            return self._token if live else None

    def on_change(self, handler: Callable[[bool], None]) -> Callable[[], None]:
        """Call ``handler(leading)`` (in the lease thread; keep it short) when this
        instance becomes or stops being the leader; returns the unsubscribe."""
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    def claim(self, key: str, ttl: float) -> bool:
        """Claim the unit of work ``key`` for the system, once: True only for the first
        claim, and only while this instance holds the lease with its current token."""
        token = self.token
        if token is None:
            return False
        done = self._store().claim(key, self.lease, self.holder, token, ttl)
        if done is None:
            log.warning("lease token %d is stale: %s is not done here", token, key)
            self._lost()
        return bool(done)

    # -- holding ----------------------------------------------------------------------------
    def attempt(self) -> bool:
        """One try to take or renew the lease; whether this instance leads now."""
        began = time.monotonic()
        ttl = self.config.lease
        try:
            token = self._store().acquire(self.lease, self.holder, ttl)
        except Exception as exc:  # the store is down: leadership lapses with the lease
            if not self._failing:
                log.warning("leader lease: the store did not answer: %s", describe_failure(exc))
            self._failing = True
            token = self._token if time.monotonic() < self._valid_until else None
            self._settle(token, None)
            return token is not None
        if self._failing:
            log.info("leader lease: the store answers again")
        self._failing = False
        self._settle(token, began + ttl - min(_MARGIN * ttl, 0.5) if token is not None else None)
        return token is not None

    def _settle(self, token: int | None, valid_until: float | None) -> None:
        with self._lock:
            was = self._leading
            if valid_until is not None:
                self._valid_until = valid_until
            self._token = token
            if token is None:
                self._valid_until = 0.0
            now = self._token is not None
            self._leading = now
        if now != was:
            if now:
                log.info("%s leads now (lease token %s)", self.holder, token)
            else:
                log.info("%s no longer leads", self.holder)
            for handler in list(self._handlers):
                try:
                    handler(now)
                except Exception:
                    log.exception("leadership change handler failed")

    def _lost(self) -> None:
        self._settle(None, None)

    def run(self, stop: threading.Event) -> None:
        """Hold (or wait for) the lease until ``stop`` is set; then give it up."""
        while not stop.is_set():
            leading = self.attempt()
            stop.wait(self.config.renew_every if leading else self._standby_wait())
        self.release()

    def _standby_wait(self) -> float:
        """Seconds a standby waits before its next try: ``retry_every``, or less when
        the holder's lease ends sooner (measured on the store's clock)."""
        wait = self.config.retry_every
        if self._failing:
            return wait
        try:
            held = self._store().holder(self.lease)
        except Exception:  # the next attempt reports the store's trouble
            return wait
        if held is None:
            return _AFTER_EXPIRY  # free, or given up since the attempt: take it now
        return min(wait, max(held.expires_in, 0.0) + _AFTER_EXPIRY)

    def release(self) -> None:
        """Give the lease up now (a clean stop), so a standby need not wait it out."""
        with self._lock:
            token = self._token
        if token is None:
            return
        self._lost()
        try:
            self._store().release(self.lease, self.holder, token)
        except Exception as exc:  # it expires by itself within the lease time
            log.warning("leader lease not released (it expires): %s", describe_failure(exc))


def leader_of(meta: MetaService) -> Leadership | None:
    """The leadership of the runtime using ``meta``'s registry, if it joined a cluster."""
    return meta.registry.leadership


def is_leader(meta: MetaService, duty: str | None = None) -> bool:
    """Should this process do the singleton duty ``duty`` now? True on the leader;
    also True for a registry no runtime joined to a cluster (it is alone)."""
    leadership = leader_of(meta)
    return True if leadership is None else leadership.is_leader(duty)
