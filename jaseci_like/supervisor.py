"""The supervisor: keeps enabled services running, with backoff, and gives up cleanly.

A daemon of the runtime checks each service on an interval. A FAILED service, or
a RUNNING one whose ``health()`` fails, is reset (stopped, config re-read,
started). Retries back off exponentially with jitter up to a cap; after
``give_up_after`` failures in a row the service stays FAILED and is reported as
given up. When a service comes back, the services that depend on it are reset
too, so none keeps a client of the old instance.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from jaseci_like.config.secrets import mask_url

if TYPE_CHECKING:
    from jaseci_like.hooks.memory import MemoryHook
    from jaseci_like.meta import MetaService
    from jaseci_like.service import CommonService

log = logging.getLogger(__name__)


class SupervisorConfig(BaseModel):
    """``runtime.supervisor`` settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    #: Seconds between health checks of every service.
    interval: float = Field(default=1.0, gt=0, le=3600)
    #: First retry delay, doubled on each failure in a row, capped.
    backoff_base: float = Field(default=0.2, gt=0, le=3600)
    backoff_cap: float = Field(default=30.0, gt=0, le=86400)
    #: Fraction of each delay drawn at random (0.2: the delay is 80% to 120%).
    jitter: float = Field(default=0.2, ge=0, le=1)
    #: Failures in a row after which a service stays FAILED.
    give_up_after: int = Field(default=10, ge=1, le=1_000_000)


@dataclass
class Supervision:
    """What the supervisor knows of one service (shown by ``status`` and the API)."""

    restarts: int = 0
    failures: int = 0
    last_error: str | None = None
    #: ``time.monotonic()`` of the next restart attempt, or None.
    next_retry: float | None = None
    gave_up: bool = False
    history: list[float] = field(default_factory=list)

    def retry_in(self) -> float | None:
        """Seconds until the next attempt (never negative), or None."""
        if self.next_retry is None:
            return None
        return max(0.0, self.next_retry - time.monotonic())


class Supervisor:
    """Watches the services attached to ``hook``, in dependency order."""

    def __init__(
        self, meta: MetaService, hook: MemoryHook, config: SupervisorConfig | None = None
    ) -> None:
        self.meta = meta
        self.hook = hook
        self.config = config or SupervisorConfig()
        self.states: dict[str, Supervision] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    # -- running ------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop checking (before the services stop, so none is restarted meanwhile)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def wake(self) -> None:
        """Check now rather than at the end of the interval."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
            except Exception:  # the supervisor itself must outlive any one check
                log.exception("supervisor check failed")
            self._wake.wait(self._next_wait())
            self._wake.clear()

    def _next_wait(self) -> float:
        wait = self.config.interval
        with self._lock:
            for state in self.states.values():
                due = state.retry_in()
                if due is not None and not state.gave_up:
                    wait = min(wait, due)
        return wait

    # -- one pass -------------------------------------------------------------------
    def state(self, name: str) -> Supervision:
        with self._lock:
            return self.states.setdefault(name, Supervision())

    def check_once(self) -> None:
        """Check every supervised service once, dependencies first."""
        for level in self.meta.start_levels(list(self.hook.services)):
            for name in level:
                if self._stop.is_set():
                    return
                service = self.hook.services.get(name)
                if service is not None and service.enabled:
                    self._check(name, service)

    def _check(self, name: str, service: CommonService) -> None:
        state = self.state(name)
        if service.is_running():
            problem = self._health_problem(service)
            if problem is None:
                return
            state.last_error = problem
            log.warning("%s is unhealthy: %s", name, problem)
        elif not service.has_failed():
            return  # starting, stopping or never started: not ours to judge
        elif service.error is not None:
            state.last_error = mask_url(f"{type(service.error).__name__}: {service.error}")
        if state.gave_up:
            return
        if state.next_retry is None and state.failures == 0:
            state.next_retry = time.monotonic()  # first failure: try at once
        if state.next_retry is not None and time.monotonic() < state.next_retry:
            return
        if not self._dependencies_running(service):
            return  # they are restarted first (earlier level); no failure counted
        self._restart(name, service, state)

    def _health_problem(self, service: CommonService) -> str | None:
        try:
            if service.health():
                return None
        except Exception as exc:  # an unhealthy service is reported, then restarted
            return mask_url(f"{type(exc).__name__}: {exc}")
        return "health check returned false"

    def _dependencies_running(self, service: CommonService) -> bool:
        for dep in service.requires:
            other = self.hook.services.get(dep)
            if other is None or not other.is_running():
                return False
        return True

    def _restart(self, name: str, service: CommonService, state: Supervision) -> None:
        log.info("restarting %s (attempt %d)", name, state.failures + 1)
        service.reset(self.hook)
        if service.is_running() and self._health_problem(service) is None:
            state.restarts += 1
            state.failures = 0
            state.next_retry = None
            state.history.append(time.monotonic())
            log.warning("%s is running again (restart %d)", name, state.restarts)
            self._restart_dependents(name)
            return
        state.failures += 1
        if service.error is not None:
            state.last_error = mask_url(f"{type(service.error).__name__}: {service.error}")
        if state.failures >= self.config.give_up_after:
            state.gave_up = True
            state.next_retry = None
            log.error("%s: giving up after %d failed restarts", name, state.failures)
            return
        state.next_retry = time.monotonic() + self.delay(state.failures)

    def delay(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` failures in a row."""
        c = self.config
        base: float = min(c.backoff_cap, c.backoff_base * 2.0 ** (failures - 1))
        return base * (1 + c.jitter * (2 * self._random.random() - 1))

    def _restart_dependents(self, name: str) -> None:
        for other_name, other in list(self.hook.services.items()):
            if name in other.requires and other.enabled and other.is_running():
                log.info("restarting %s, which depends on %s", other_name, name)
                other.reset(self.hook)
                if other.is_running():
                    self.state(other_name).restarts += 1
