"""The passes of JsOrc over its keep-alive list (the ``app`` of the jsorc service)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jaseci_like_services.jsorc.config import JsOrcConfig
from jaseci_like_services.jsorc.metrics import JsOrcMetrics
from jaseci_like_services.jsorc.report import STATUS_GLOB, Outcome, Status, Step

from jaseci_like import CommonService, JaseciLikeError, MemoryHook, ServiceState
from jaseci_like.manifests import Manifests
from jaseci_like.supervisor import Supervisor, describe_failure

if TYPE_CHECKING:
    from jaseci_like_services.kube import KubeService

log = logging.getLogger("jaseci_like_services.jsorc")


@dataclass
class Attempts:
    """JsOrc's attempts on one service that is not running."""

    failures: int = 0
    #: ``time.monotonic()`` before which the service is not tried again.
    next_at: float = 0.0
    gave_up: bool = False


class Orchestrator:
    """One pass: every keep-alive service that is enabled and not RUNNING is deployed
    (kube) and restarted through the supervisor, or left to the supervisor."""

    def __init__(
        self,
        options: JsOrcConfig,
        hook: MemoryHook,
        metrics: JsOrcMetrics,
        leader: Callable[[], bool],
        quiet: bool = False,
    ) -> None:
        self.options = options
        self.hook = hook
        self.metrics = metrics
        self.leader = leader
        self.quiet = quiet
        self.status = Status(list(options.keep_alive), options.interval)
        self.attempts: dict[str, Attempts] = {}
        self._passes = threading.Condition()
        self._pass_lock = threading.Lock()

    @property
    def passes(self) -> int:
        return self.status.passes

    # -- the daemon ---------------------------------------------------------------------
    def loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.options.interval):
            self.run_pass(stop)

    def wait_for_pass(self, after: int, timeout: float) -> bool:
        """Wait until more than ``after`` passes have ended; False on timeout."""
        with self._passes:
            return self._passes.wait_for(lambda: self.status.passes > after, timeout)

    def run_pass(self, stop: threading.Event | None = None) -> list[Step]:
        """One pass over the keep-alive list (one at a time); the steps it took."""
        stop = stop if stop is not None else threading.Event()
        with self._pass_lock:
            began, began_wall = time.monotonic(), time.time()
            steps: list[Step] = []
            role = "leader" if self._is_leader() else "standby"
            if role == "leader":
                for name in self.options.keep_alive:
                    if stop.is_set():
                        break
                    self._keep(name, stop, steps)
            self.metrics.passes.labels(role).inc()
            status = self.status
            status.role = role
            status.last_pass_at = began_wall
            status.last_pass_seconds = time.monotonic() - began
            status.last_pass = steps
            if role == "leader":  # one report per system: a standby's would overwrite it
                self._save()
            with self._passes:
                status.passes += 1
                self._passes.notify_all()
            return steps

    def _is_leader(self) -> bool:
        try:
            return bool(self.leader())
        except Exception as exc:  # an unknown answer is "not the leader": never run twice
            log.warning("jsorc: the leader check failed, so this pass stands by: %s", exc)
            return False

    def _save(self) -> None:
        try:
            self.hook.save_glob(STATUS_GLOB, self.status.to_json())
        except Exception as exc:  # the status is a report; the duty goes on without it
            log.warning("jsorc: status not saved: %s", describe_failure(exc))

    def _record(self, step: Step, steps: list[Step] | None = None) -> None:
        """Count, keep and log ``step`` as it happens (a long wait shows its deploy).

        A step that repeats the service's last one (a service left failing, seen
        every pass) is counted, but not logged or listed again."""
        if steps is not None:
            steps.append(step)
        self.metrics.actions.labels(step.service, step.action, step.outcome).inc()
        before = self.status.services.get(step.service)
        self.status.services[step.service] = step
        if before is not None and (before.action, before.outcome, before.detail) == (
            step.action,
            step.outcome,
            step.detail,
        ):
            return
        self.status.recent.append(step)
        level = logging.WARNING if step.outcome == "failed" else logging.INFO
        if self.quiet:
            level = logging.DEBUG
        log.log(level, "jsorc: %s", step)

    # -- one service ------------------------------------------------------------------------
    def _service(self, name: str) -> CommonService | None:
        meta = self.hook.meta
        found = self.hook.services.get(name)
        if found is None and meta is not None:
            found = meta.registry.background.get(name)
        return found

    def _kube(self) -> KubeService | None:
        from jaseci_like_services.kube import KubeService

        kube = self._service("kube")
        return kube if isinstance(kube, KubeService) and kube.is_running() else None

    def _keep(self, name: str, stop: threading.Event, steps: list[Step]) -> None:
        service = self._service(name)
        if service is None:
            self._record(Step(name, "check", "skipped", "not a service of this runtime"), steps)
            return
        running = service.is_running()
        self.metrics.running.labels(name).set(1 if running else 0)
        self.status.states[name] = service.state.name
        if not service.enabled:
            self._record(Step(name, "check", "skipped", "disabled"), steps)
            return
        if running:
            self.attempts.pop(name, None)
            return
        if service.state in (ServiceState.STARTED, ServiceState.STOPPING):
            return  # on its way somewhere: judged at the next pass
        attempts = self.attempts.setdefault(name, Attempts())
        if attempts.gave_up or time.monotonic() < attempts.next_at:
            return
        kube = self._kube()
        found = None
        if kube is not None:
            from jaseci_like_services.jsorc.deploy import manifests_of

            try:
                found = manifests_of(service, self.hook)
            except Exception as exc:  # a service whose manifests cannot be read
                why = describe_failure(exc, service)
                self._record(self._failed(name, attempts, "deploy", why), steps)
                return
        if (
            kube is not None
            and found is not None
            and not self._deploy(name, attempts, kube, found, stop, steps)
        ):
            return
        step = self._restart(name, service, attempts, deployed=found is not None)
        if step is not None:
            self._record(step, steps)

    def _deploy(
        self,
        name: str,
        attempts: Attempts,
        kube: KubeService,
        found: tuple[str, Manifests],
        stop: threading.Event,
        steps: list[Step],
    ) -> bool:
        """Apply, then wait; True when the service's pods and endpoints are ready."""
        from jaseci_like_services.jsorc.deploy import apply, wait_ready

        where, manifests = found
        try:
            actions, readiness = apply(kube, where, manifests, self.options.namespace)
        except JaseciLikeError as exc:  # KubeError (refused, unreachable), a bad manifest
            why = describe_failure(exc, kube)
            self._record(self._failed(name, attempts, "deploy", why), steps)
            return False
        changes = [str(a) for a in actions if a.writes]
        done = "; ".join(changes) or f"{where}: nothing to change"
        self._record(Step(name, "deploy", "ok", done), steps)
        try:
            took = wait_ready(
                kube, readiness, self.options.wait_timeout, self.options.wait_poll, stop
            )
        except JaseciLikeError as exc:  # DeployTimeout, or the cluster went away
            why = describe_failure(exc, kube)
            self._record(self._failed(name, attempts, "wait", why), steps)
            return False
        self.metrics.wait_seconds.labels(name).observe(took)
        self._record(Step(name, "wait", "ok", f"pods and endpoints ready after {took:.2f}s"), steps)
        return True

    def _restart(
        self, name: str, service: CommonService, attempts: Attempts, deployed: bool
    ) -> Step | None:
        meta = self.hook.meta
        supervisor = meta.registry.supervisor if meta is not None else None
        if supervisor is not None and supervisor.stopping:
            return None  # the runtime is stopping: nothing is to be restarted now
        # Configured to run counts, not running yet: at start-up jsorc's first pass may
        # come before the runtime starts its supervisor.
        if supervisor is not None and supervisor.config.enabled and not supervisor.stopping:
            return self._through_supervisor(name, supervisor, attempts, deployed)
        # No supervisor runs: jsorc is the only restart path there is.
        try:
            service.reset(self.hook)
        except Exception as exc:  # e.g. its config could not be read again
            return self._failed(name, attempts, "reset", describe_failure(exc, service))
        if service.is_running():
            self.attempts.pop(name, None)
            return Step(name, "reset", "ok", "RUNNING again")
        why = describe_failure(service.error, service) or service.state.name
        return self._failed(name, attempts, "reset", why)

    def _through_supervisor(
        self, name: str, supervisor: Supervisor, attempts: Attempts, deployed: bool
    ) -> Step:
        if deployed:
            supervisor.retry_now(name)
            self._backoff(attempts)  # if it is still down next pass, try again later
            return Step(name, "restart", "ok", "deployed; the supervisor restarts it now")
        state = supervisor.states.get(name)
        outcome: Outcome = "waiting"
        if state is None:
            detail = "left to the supervisor"
        elif state.gave_up:
            outcome = "failed"
            detail = f"the supervisor gave up after {state.failures} failed restarts"
        else:
            retry = state.retry_in()
            when = "-" if retry is None else f"{retry:.1f}s"
            detail = f"left to the supervisor ({state.failures} failed restarts, next in {when})"
        return Step(name, "restart", outcome, detail)

    def _backoff(self, attempts: Attempts) -> float:
        attempts.failures += 1
        wait = min(
            self.options.backoff_cap, self.options.backoff_base * 2.0 ** (attempts.failures - 1)
        )
        attempts.next_at = time.monotonic() + wait
        return wait

    def _failed(self, name: str, attempts: Attempts, action: str, why: str | None) -> Step:
        wait = self._backoff(attempts)
        if action == "reset" and attempts.failures >= self.options.give_up_after:
            attempts.gave_up = True
            return Step(
                name, action, "failed", f"gave up after {attempts.failures} failures: {why}"
            )
        return Step(name, action, "failed", f"{why}; next attempt in {wait:.1f}s")
