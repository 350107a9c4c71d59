"""ClusterNode: this runtime as one instance of the system, in the shared registry.

Three daemon threads, so that no slow part holds up another: ``cluster:heartbeat``
writes this instance's record every ``heartbeat`` seconds (and takes requests
from its inbox, and prunes instances silent past their ``prune_after``);
``cluster:report`` refreshes the per-service part of the record (states, health
checks, restarts, last errors: masked); ``cluster:lease`` holds or waits for
the leader lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from jaseci_like.cluster.config import ClusterConfig
from jaseci_like.cluster.lease import Leadership
from jaseci_like.cluster.store import ClusterStore
from jaseci_like.supervisor import describe_failure

log = logging.getLogger(__name__)

#: What the runtime reports of its services: one JSON-able mapping per service.
Report = Callable[[], list[dict[str, Any]]]
#: Handles one request from the inbox; returns the answer.
Handler = Callable[[dict[str, Any]], dict[str, Any]]
#: Roles an instance may have.
ROLES = ("up", "worker", "embedded")
#: Seconds between two looks into the inbox (at most; the heartbeat if shorter).
INBOX_POLL = 0.25


def version() -> str:
    try:
        return metadata.version("jaseci-like")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Identity:
    """What never changes while an instance runs."""

    id: str
    role: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    version: str = field(default_factory=version)
    started_at: float = field(default_factory=time.time)


class ClusterNode:
    """Registers ``identity`` through ``store``; see the module docstring."""

    def __init__(
        self,
        identity: Identity,
        store: Callable[[], ClusterStore],
        config: ClusterConfig,
        leadership: Leadership,
        report: Report,
        api_url: Callable[[], str | None],
        handler: Handler,
    ) -> None:
        self.identity = identity
        self.config = config
        self.leadership = leadership
        self._store = store
        self._report = report
        self._api_url = api_url
        self._handler = handler
        self._services: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failing = False

    def record(self) -> dict[str, Any]:
        """This instance's record as stored: nothing secret in it."""
        i = self.identity
        return {
            "id": i.id,
            "host": i.host,
            "pid": i.pid,
            "version": i.version,
            "role": i.role,
            "started_at": i.started_at,
            "api_url": self._api_url(),
            "leader": self.leadership.is_leader(),
            "duties": sorted(self.leadership.duties),
            "heartbeat": self.config.heartbeat,
            "lost_after": self.config.lost_seconds,
            "prune_after": self.config.prune_after,
            "services": self._services,
        }

    def start(self, services: list[dict[str, Any]]) -> None:
        """Register now (with ``services`` as first known), try for the lease once,
        then keep both up in daemon threads."""
        self._services = services
        self._stop.clear()
        self.beat()
        self.leadership.attempt()
        for name, target in (
            ("cluster:heartbeat", self._heartbeat),
            ("cluster:report", self._reporting),
            ("cluster:lease", self.leadership.run),
        ):
            thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 1.0) -> None:
        """Leave: give the lease up and remove the record (a clean exit is not "lost")."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        # In a thread of its own, so a store that does not answer cannot hold up the
        # stop: the lease then expires, and the record is shown lost, then pruned.
        leaving = threading.Thread(target=self._leave, name="cluster:leave", daemon=True)
        leaving.start()
        leaving.join(max(0.1, deadline - time.monotonic()))
        if leaving.is_alive():
            log.warning("instance registry: the store did not answer; leaving it to expire")

    def _leave(self) -> None:
        self.leadership.release()
        try:
            self._store().remove_instance(self.identity.id)
        except Exception as exc:  # it is shown lost, then pruned, like a crash
            log.warning("instance record not removed: %s", describe_failure(exc))

    # -- the threads --------------------------------------------------------------------------
    def beat(self) -> None:
        """Write the record once; a failure is logged (once per outage) and retried."""
        try:
            self._store().put_instance(self.identity.id, self.record())
        except Exception as exc:  # the store is down: the next beat tries again
            if not self._failing:
                log.warning("instance registry: heartbeat not written: %s", describe_failure(exc))
            self._failing = True
            return
        if self._failing:
            log.info("instance registry: heartbeats written again")
        self._failing = False

    def _heartbeat(self, stop: threading.Event) -> None:
        next_beat = time.monotonic() + self.config.heartbeat
        while not stop.wait(min(INBOX_POLL, self.config.heartbeat)):
            self._take_requests()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.config.heartbeat
                self.beat()
                self._prune()

    def _reporting(self, stop: threading.Event) -> None:
        while not stop.wait(self.config.heartbeat):
            try:
                self._services = self._report()
            except Exception as exc:  # a report is a view; the next one may work
                log.warning("instance registry: services not reported: %s", describe_failure(exc))

    def _take_requests(self) -> None:
        try:
            store = self._store()
            requests = store.receive(self.identity.id)
        except Exception as exc:  # reported by the heartbeat's own failure
            log.debug("inbox not read: %s", describe_failure(exc))
            return
        for request_id, body in requests:
            threading.Thread(
                target=self._handle,
                args=(request_id, body),
                name=f"cluster:request:{request_id[:8]}",
                daemon=True,
            ).start()

    def _handle(self, request_id: str, body: dict[str, Any]) -> None:
        try:
            answer = self._handler(body)
        except Exception as exc:  # the asker is told, masked
            answer = {"outcome": "failed", "detail": describe_failure(exc)}
        answer.setdefault("role", self.identity.role)
        try:
            self._store().answer(request_id, self.identity.id, answer)
        except Exception as exc:  # the asker reports "no answer"
            log.warning("request %s: answer not stored: %s", request_id, describe_failure(exc))

    def _prune(self) -> None:
        try:
            store = self._store()
            for seen in store.instances():
                if seen.age > float(seen.record.get("prune_after") or self.config.prune_after):
                    log.info("pruning instance %s (silent %.0fs)", seen.record.get("id"), seen.age)
                    store.remove_instance(str(seen.record.get("id")))
        except Exception as exc:  # pruning is housekeeping; the next beat tries again
            log.debug("pruning skipped: %s", describe_failure(exc))
