"""Random start/stop/reset/fail sequences only ever make legal lifecycle moves."""

from __future__ import annotations

import threading
from types import MappingProxyType

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jaseci_like import CommonService, MemoryHook, ServiceState
from jaseci_like.state import LEGAL_MOVES

S = ServiceState
#: Long enough that a test waiting this long has failed, short enough not to hang CI.
WAIT = 5.0


class Boom(Exception):
    """The failure the machine asks for."""


class Machined(CommonService):
    """Fails on demand (in run, in post_run, or by crashing its daemon); records every move."""

    name = "machined"
    default_config = MappingProxyType({"enabled": True})

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.attempted: list[tuple[ServiceState, ServiceState]] = []
        self._attempted_lock = threading.Lock()
        self.fail_run = False
        self.fail_post_run = False
        self.crash_requested = False
        self.wake = threading.Event()
        self.failed_event = threading.Event()
        super().__init__(hook)

    def _move(self, target: ServiceState) -> None:
        # Every attempt is recorded, so an illegal one is seen even if something catches it.
        with self._attempted_lock:
            self.attempted.append((self.state, target))
        super()._move(target)

    def moves(self) -> list[tuple[ServiceState, ServiceState]]:
        with self._attempted_lock:
            return list(self.attempted)

    def run(self, hook: MemoryHook | None = None) -> None:
        if self.fail_run:
            raise Boom("run failed on demand")
        self.wake = threading.Event()
        self.crash_requested = False
        self.app = object()

    def post_run(self, hook: MemoryHook | None = None) -> None:
        if self.fail_post_run:
            raise Boom("post_run failed on demand")
        wake = self.wake

        def work(stop: threading.Event) -> None:
            wake.wait(WAIT * 4)
            if self.crash_requested:
                raise Boom("daemon crashed on demand")

        self.spawn_daemon(worker=work)

    def teardown(self) -> None:
        self.wake.set()

    def failed(self) -> None:
        super().failed()
        self.failed_event.set()


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.svc = Machined()

    def expected_after_start(self) -> ServiceState:
        return S.FAILED if self.svc.fail_run or self.svc.fail_post_run else S.RUNNING

    @rule(fail_run=st.booleans(), fail_post_run=st.booleans())
    def choose_failures(self, fail_run: bool, fail_post_run: bool) -> None:
        self.svc.fail_run = fail_run
        self.svc.fail_post_run = fail_post_run

    @rule()
    def start(self) -> None:
        before = self.svc.state
        expected = self.expected_after_start() if before is S.NOT_STARTED else before
        assert self.svc.start() is self.svc
        assert self.svc.state is expected, f"start from {before.name}"

    @rule()
    def stop(self) -> None:
        before = self.svc.state
        self.svc.stop(timeout=WAIT)
        expected = S.STOPPED if before is S.RUNNING else before
        assert self.svc.state is expected, f"stop from {before.name}"
        assert self.svc.app is None or before is S.NOT_STARTED

    @rule(start=st.booleans())
    def reset(self, start: bool) -> None:
        self.svc.reset(start=start)
        expected = self.expected_after_start() if start else S.NOT_STARTED
        assert self.svc.state is expected

    @precondition(lambda self: self.svc.state is S.RUNNING and self.svc.daemon_names())
    @rule()
    def crash_daemon(self) -> None:
        self.svc.failed_event.clear()
        self.svc.crash_requested = True
        self.svc.wake.set()
        assert self.svc.failed_event.wait(WAIT), "a crashed daemon did not fail its service"
        assert self.svc.state is S.FAILED
        assert isinstance(self.svc.error, Boom)
        assert "daemon crashed" in str(self.svc.error)

    @invariant()
    def only_legal_moves(self) -> None:
        illegal = [(a.name, b.name) for a, b in self.svc.moves() if (a, b) not in LEGAL_MOVES]
        assert illegal == [], f"illegal moves attempted: {illegal}"

    @invariant()
    def running_has_app(self) -> None:
        if self.svc.is_running():
            assert self.svc.app is not None
        if self.svc.state is S.RUNNING:
            assert self.svc.app is not None, "RUNNING without app (run always sets it here)"
            assert self.svc.error is None

    @invariant()
    def failed_has_error(self) -> None:
        if self.svc.has_failed():
            assert self.svc.error is not None
            assert not self.svc.is_running()

    @invariant()
    def no_daemon_outlives_a_stop(self) -> None:
        if self.svc.state in (S.STOPPED, S.NOT_STARTED):
            assert self.svc.daemon_names() == []

    def teardown(self) -> None:
        self.svc.stop(timeout=WAIT)
        assert self.svc.terminate_daemon(timeout=WAIT) == []


def test_random_lifecycles_make_only_legal_moves() -> None:
    run_state_machine_as_test(
        LifecycleMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_machine_visits_every_legal_move() -> None:
    """The rules can reach every legal move, so the property above is not vacuous."""
    machine = LifecycleMachine()
    machine.start()
    machine.crash_daemon()
    machine.reset(start=True)
    machine.stop()
    machine.reset(start=False)
    machine.choose_failures(fail_run=True, fail_post_run=False)
    machine.start()
    machine.teardown()
    assert set(machine.svc.moves()) == LEGAL_MOVES
