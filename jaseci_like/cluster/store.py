"""The interface of the store the instances share, and the in-memory one.

The registry (instance records), the leader lease (with a fencing token), fenced
claims of one-time work (a beat tick) and the refresh inbox live behind this one
small interface, with a Redis implementation (:mod:`.redis_store`) and a SQL one
(:mod:`.sql_store`). :class:`MemoryStore` serves a runtime with neither: it is
alone by definition, so it always leads.

Every age is measured on the store's clock (Redis ``TIME``, the database's
``now``), never compared across the machines' own clocks.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

LEADER_LEASE = "leader"


@dataclass(frozen=True)
class Seen:
    """One stored instance record and the seconds since it was written."""

    record: dict[str, Any]
    age: float


@dataclass(frozen=True)
class Holder:
    """Who holds a lease now, with its fencing token and seconds left."""

    holder: str
    token: int
    expires_in: float


class ClusterStore(Protocol):
    """Where the instances of one system meet. Every call may raise the driver's
    connection errors; callers log and retry at their next beat."""

    #: What it is, for ``status``: "redis", "postgresql", "sqlite" or "memory".
    kind: str

    def put_instance(self, instance_id: str, record: dict[str, Any]) -> None:
        """Write (or overwrite) the record of an instance, stamped with the store's now."""

    def remove_instance(self, instance_id: str) -> None: ...

    def instances(self) -> list[Seen]:
        """Every stored record with its age."""

    def acquire(self, lease: str, holder: str, ttl: float) -> int | None:
        """Take ``lease`` if free or expired, or renew it if ``holder`` has it; its
        fencing token (a new, larger one on each take), or None if another holds it."""

    def release(self, lease: str, holder: str, token: int) -> None:
        """Give ``lease`` up, only if ``holder`` still holds it with ``token``."""

    def holder(self, lease: str) -> Holder | None: ...

    def claim(self, key: str, lease: str, holder: str, token: int, ttl: float) -> bool | None:
        """Claim ``key`` once, for ``ttl`` seconds, only while ``holder`` holds ``lease``
        with ``token``: True when claimed now, False when claimed already, None when
        the token is stale (fenced out)."""

    def send(self, instance_id: str, request_id: str, body: dict[str, Any]) -> None:
        """Leave a request in an instance's inbox."""

    def receive(self, instance_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Take the requests waiting for an instance: (request id, body), oldest first."""

    def answer(self, request_id: str, instance_id: str, body: dict[str, Any]) -> None: ...

    def answers(self, request_id: str) -> dict[str, dict[str, Any]]:
        """The answers to a request so far, by instance id."""


class MemoryStore:
    """One process's registry: nobody else to meet, so its lease is always free."""

    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, tuple[str, float]] = {}
        self._leases: dict[str, tuple[str, int, float]] = {}
        self._tokens: dict[str, int] = {}
        self._claims: dict[str, float] = {}
        self._inbox: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._answers: dict[str, dict[str, dict[str, Any]]] = {}

    def put_instance(self, instance_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._records[instance_id] = (json.dumps(record), time.monotonic())

    def remove_instance(self, instance_id: str) -> None:
        with self._lock:
            self._records.pop(instance_id, None)

    def instances(self) -> list[Seen]:
        now = time.monotonic()
        with self._lock:
            return [Seen(json.loads(text), now - at) for text, at in self._records.values()]

    def acquire(self, lease: str, holder: str, ttl: float) -> int | None:
        now = time.monotonic()
        with self._lock:
            current = self._leases.get(lease)
            if current is not None and current[0] != holder and current[2] > now:
                return None
            if current is not None and current[0] == holder:
                token = current[1]
            else:
                token = self._tokens[lease] = self._tokens.get(lease, 0) + 1
            self._leases[lease] = (holder, token, now + ttl)
            return token

    def release(self, lease: str, holder: str, token: int) -> None:
        with self._lock:
            current = self._leases.get(lease)
            if current is not None and current[:2] == (holder, token):
                del self._leases[lease]

    def holder(self, lease: str) -> Holder | None:
        now = time.monotonic()
        with self._lock:
            current = self._leases.get(lease)
        if current is None or current[2] <= now:
            return None
        return Holder(current[0], current[1], current[2] - now)

    def claim(self, key: str, lease: str, holder: str, token: int, ttl: float) -> bool | None:
        now = time.monotonic()
        with self._lock:
            current = self._leases.get(lease)
            if current is None or current[:2] != (holder, token) or current[2] <= now:
                return None
            if self._claims.get(key, 0.0) > now:
                return False
            self._claims = {k: t for k, t in self._claims.items() if t > now}
            self._claims[key] = now + ttl
            return True

    def send(self, instance_id: str, request_id: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._inbox.setdefault(instance_id, []).append((request_id, body))

    def receive(self, instance_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return self._inbox.pop(instance_id, [])

    def answer(self, request_id: str, instance_id: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._answers.setdefault(request_id, {})[instance_id] = body

    def answers(self, request_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._answers.get(request_id, {}))
