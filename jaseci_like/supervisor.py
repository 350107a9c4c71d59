"""The supervisor: keeps enabled services running, with backoff, and gives up cleanly.

A daemon of the runtime checks each service on an interval, dependencies first.
A FAILED service, or a RUNNING one whose ``health()`` fails, is reset (stopped,
config re-read, started). The first attempt after a service was seen failing is
made at once; each failed attempt in a row doubles the wait (``backoff_base``,
``2 * backoff_base``, ... up to ``backoff_cap``, with ``jitter``). A restarted
service is on probation for ``stable_after`` seconds: failing again before it
passed a health check that late counts as one more failed attempt, so a crash
loop backs off too. After ``give_up_after`` failed attempts in a row the
service is left as it is (FAILED; or RUNNING and unhealthy, if that is how its
last attempt ended) and reported as given up. A service whose dependency is not
running is not tried (nor counted as failing) until that one runs. When a
service comes back, the running services that depend on it (directly or not)
are reset too, so none keeps a client of the old instance.

Per service (``Supervision``)::

    healthy --fails--> retry now --attempt ok--> probation --healthy, stable_after later--> healthy
                          ^   |                      |
                          |   | attempt failed       | fails again
                          |   v                      v
                          +-- wait delay(failures) <-+  (failures == give_up_after: gave up)
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jaseci_like.config.schema import secret_paths
from jaseci_like.config.secrets import mask_url, secret_strings
from jaseci_like.errors import JaseciLikeError

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
    #: Wait after the first failed attempt, doubled on each further one, capped.
    backoff_base: float = Field(default=0.2, gt=0, le=3600)
    backoff_cap: float = Field(default=30.0, gt=0, le=86400)
    #: Fraction of each wait drawn at random (0.2: 80% to 120%, never above the cap).
    jitter: float = Field(default=0.2, ge=0, le=1)
    #: Failed attempts in a row after which a service is left FAILED.
    give_up_after: int = Field(default=10, ge=1, le=1_000_000)
    #: Seconds a restarted service must stay healthy before its failures are forgotten.
    stable_after: float = Field(default=10.0, ge=0, le=86400)

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> Self:
        if self.backoff_cap < self.backoff_base:
            raise ValueError(
                f"backoff_cap ({self.backoff_cap:g}) must not be below "
                f"backoff_base ({self.backoff_base:g})"
            )
        return self


@dataclass
class Supervision:
    """What the supervisor knows of one service (shown by ``status`` and the API)."""

    #: Times the supervisor brought it back to RUNNING (its own restarts, and resets
    #: because a dependency came back).
    restarts: int = 0
    #: Failed restart attempts in a row.
    failures: int = 0
    #: The last failure seen, secrets masked; kept after the service recovers.
    last_error: str | None = None
    #: ``time.monotonic()`` of the next restart attempt, or None.
    next_retry: float | None = None
    gave_up: bool = False
    #: ``time.monotonic()`` until which a restarted service is on probation, or None.
    probation_until: float | None = None
    #: A dependency that is not running, which its restart waits for.
    waiting_for: str | None = None
    #: ``time.monotonic()`` of the latest restarts (oldest first).
    history: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def retry_in(self) -> float | None:
        """Seconds until the next attempt (never negative), or None."""
        due = self.next_retry
        if due is None or self.gave_up:
            return None
        return max(0.0, due - time.monotonic())


def secret_values(config: Mapping[str, Any], schema: type[BaseModel] | None = None) -> set[str]:
    """The secret strings inside a service config: values ``schema`` marks secret
    (``SecretStr``, ``Sensitive``), values of credential-named keys, URL passwords."""
    return secret_strings(config, secret_paths(schema) if schema is not None else None)


def describe_failure(exc: BaseException | None, service: CommonService | None = None) -> str | None:
    """A description of ``exc`` with every secret masked: URL passwords, every known
    secret of this process's config and, when ``service`` is given, those of its own."""
    if exc is None:
        return None
    text = str(exc) if isinstance(exc, JaseciLikeError) else f"{type(exc).__name__}: {exc}"
    own = secret_values(service.config, service.config_schema) if service is not None else ()
    return mask_url(text, own)


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
        #: Checks of every service completed so far (a test waits for "two more").
        self.passes = 0
        #: The service being checked (or restarted) now, to say what a stop waits for.
        self.busy_with: str | None = None

    # -- running ------------------------------------------------------------------
    def start(self) -> None:
        """Start checking in a daemon thread (nothing happens if it already runs)."""
        if self._thread is not None and self._thread.is_alive():
            if not self._stop.is_set():
                return
            self._thread.join()  # a stop still finishing a restart: let it end first
        self._stop.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop checking (before the services stop, so none is restarted meanwhile).

        Returns False if the thread is still busy after ``timeout`` (a restart in
        progress); it then stops the service it was restarting itself and ends.
        """
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def retry_now(self, name: str) -> None:
        """Restart ``name`` at once if it is down, with a fresh count of failures
        (what it waited for is there now: JsOrc deployed it), instead of after its
        backoff or never (after a give-up)."""
        with self._lock:
            state = self.states.setdefault(name, Supervision())
            state.gave_up = False
            state.failures = 0
            state.probation_until = None
            state.next_retry = time.monotonic()
        self._wake.set()

    @property
    def running(self) -> bool:
        """True while the checking thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was asked (the thread may still finish a restart)."""
        return self._stop.is_set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a wake during it means "check again"
            began = time.monotonic()
            try:
                self.check_once()
            except Exception as exc:  # the supervisor itself must outlive any one check
                log.error("supervisor check failed: %s", describe_failure(exc))
                log.debug("supervisor check failed", exc_info=True)
            self._wake.wait(self._next_wait(began))

    def _next_wait(self, pass_began: float) -> float:
        """The interval, or less when a retry falls due sooner.

        A retry that was already due when the pass began and is still pending was
        held back (its dependency is down, or the service is no longer checked):
        it waits for the next interval, or the loop would spin.
        """
        wait = self.config.interval
        now = time.monotonic()
        with self._lock:
            states = list(self.states.values())
        for state in states:
            due = state.next_retry
            if due is not None and not state.gave_up and due > pass_began:
                wait = min(wait, max(0.0, due - now))
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
                    self.busy_with = name
                    try:
                        self._check(name, service)
                    finally:
                        self.busy_with = None
        self.passes += 1

    def _check(self, name: str, service: CommonService) -> None:
        state = self.state(name)
        if service.is_running():
            problem = self._health_problem(service)
            if problem is None:
                self._healthy(name, state)
                return
            if service.has_failed():  # it failed (a daemon crashed) while being checked
                problem = describe_failure(service.error, service) or problem
            if state.next_retry is None and not state.gave_up:  # once, not every interval
                log.warning("%s is unhealthy: %s", name, problem)
            state.last_error = problem
        elif service.has_failed():
            state.last_error = describe_failure(service.error, service) or "FAILED"
        elif not (service.is_ready() and state.next_retry is not None):
            # Starting, stopping, stopped on purpose or never started: not ours to judge.
            # (NOT_STARTED with a retry due is ours: a reset that raised left it so.)
            return
        if state.gave_up:
            return
        now = time.monotonic()
        if state.next_retry is None:  # a failure seen just now
            if state.probation_until is not None:
                # It failed again soon after its restart: that restart did not hold.
                state.probation_until = None
                self._attempt_failed(name, state)
            else:
                state.next_retry = now  # it had been fine: try at once
        due = state.next_retry
        if state.gave_up or due is None or now < due:
            return
        state.waiting_for = self._missing_dependency(service)
        if state.waiting_for is not None:
            return  # restarted after it (it is checked first); no failure counted
        self._restart(name, service, state)

    def _healthy(self, name: str, state: Supervision) -> None:
        now = time.monotonic()
        if state.failures and state.probation_until is None:
            # Healthy again without a restart that held (it recovered by itself):
            # its failures are forgotten once it has stayed so for stable_after.
            state.probation_until = now + self.config.stable_after
        until = state.probation_until
        if until is not None and now >= until:
            state.probation_until = None
            state.failures = 0
        if state.gave_up:  # brought back by hand (config refresh, reset)
            log.info("%s runs again after the supervisor gave up on it", name)
            state.gave_up = False
            state.failures = 0
        state.next_retry = None
        state.waiting_for = None

    def _health_problem(self, service: CommonService) -> str | None:
        # Bounded: a server that accepts and never answers must not stall every check.
        try:
            if service.check_health():
                return None
        except Exception as exc:  # an unhealthy service is reported, then restarted
            return describe_failure(exc, service)
        return "health check returned false"

    def _missing_dependency(self, service: CommonService) -> str | None:
        """The first service ``service`` needs that is not running, or None."""
        for dep in service.requires:
            other = self.hook.services.get(dep)
            if other is None or not other.is_running():
                return dep
        return None

    def _restart(self, name: str, service: CommonService, state: Supervision) -> None:
        log.info("restarting %s (attempt %d)", name, state.failures + 1)
        error: BaseException | None = None
        try:
            service.reset(self.hook)
        except Exception as exc:  # e.g. the config store is down while re-reading config
            error = exc
        if self._stop.is_set():
            # The runtime began stopping during the reset: leave nothing running.
            service.stop()
            return
        if error is None and service.is_running():
            problem = self._health_problem(service)
            if problem is None:
                now = time.monotonic()
                state.next_retry = None
                state.probation_until = now + self.config.stable_after
                state.history.append(now)
                state.restarts += 1  # last: a reader that sees it sees the rest
                log.warning("%s is running again (restart %d)", name, state.restarts)
                self._restart_dependents(name)
                return
            state.last_error = problem
        else:
            state.last_error = describe_failure(error or service.error, service) or (
                f"not running after restart ({service.state.name})"
            )
        self._attempt_failed(name, state)

    def _attempt_failed(self, name: str, state: Supervision) -> None:
        state.failures += 1
        if state.failures >= self.config.give_up_after:
            state.gave_up = True
            state.next_retry = None
            log.error(
                "%s: giving up after %d failed restarts: %s", name, state.failures, state.last_error
            )
            return
        wait = self.delay(state.failures)
        state.next_retry = time.monotonic() + wait
        log.info("%s: next restart attempt in %.2fs", name, wait)

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row (1 or more):
        ``backoff_base * 2 ** (failures - 1)``, capped, with jitter, never above the cap."""
        c = self.config
        try:
            raw = math.ldexp(c.backoff_base, max(0, failures - 1))
        except OverflowError:  # far past the cap
            raw = math.inf
        base = min(c.backoff_cap, raw)
        return min(c.backoff_cap, base * (1 + c.jitter * (2 * self._random.random() - 1)))

    def _restart_dependents(self, name: str) -> None:
        """Replace every running service that kept what ``name`` gave it, in order
        (``rebinds`` services find the new instance by themselves and are left be)."""
        for other_name in self.meta.dependents(name, dict(self.hook.services)):
            other = self.hook.services.get(other_name)
            if other is None or self._stop.is_set():
                continue
            if not (other.enabled and other.is_running()):
                continue  # a failed one is restarted by its own check
            if self._missing_dependency(other) is not None:
                continue  # one of its other dependencies is down: reset after that one
            log.info("restarting %s, which depends on %s", other_name, name)
            try:
                other = self.meta.replace_service(other_name, self.hook)
            except Exception as exc:  # its own check retries it with backoff
                self.state(other_name).last_error = describe_failure(exc, other)
                continue
            if other.is_running():
                self.state(other_name).restarts += 1
