"""Daemon threads owned by a service: spawn, cooperative stop, crashes, leftovers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import MappingProxyType

import pytest

from jaseci_like import CommonService, MemoryHook, ServiceState
from tests.states import state_of

S = ServiceState
#: Long enough that a test waiting this long has failed, short enough not to hang CI.
WAIT = 5.0


class Boom(Exception):
    """The failure the test daemons raise on purpose."""


class Host(CommonService):
    """A running service to own daemons; ``failed_event`` is set once it has failed."""

    name = "host"
    default_config = MappingProxyType({"enabled": True})

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.failed_event = threading.Event()
        self.teardowns = 0
        super().__init__(hook)

    def run(self, hook: MemoryHook | None = None) -> None:
        self.app = object()

    def failed(self) -> None:
        super().failed()
        self.failed_event.set()

    def teardown(self) -> None:
        self.teardowns += 1


class Worker:
    """A library object with its own loop and its own stop, like a Celery worker."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self._stopping = threading.Event()
        self.stopped_by_library = False

    def loop(self) -> None:
        self.started.set()
        self._stopping.wait(WAIT * 2)
        self.stopped_by_library = self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()


class WorkerHost(Host):
    """Runs a zero-argument daemon (the library's loop); teardown calls the library's stop."""

    name = "workerhost"

    def run(self, hook: MemoryHook | None = None) -> None:
        self.app = Worker()

    def post_run(self, hook: MemoryHook | None = None) -> None:
        self.spawn_daemon(worker=self.app.loop)

    def teardown(self) -> None:
        super().teardown()
        self.app.stop()


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def waiter(entered: threading.Event, saw_stop: list[bool]) -> Callable[[threading.Event], None]:
    """An event-taking target that returns when asked and records that it was asked."""

    def target(stop: threading.Event) -> None:
        entered.set()
        saw_stop.append(stop.wait(WAIT * 2))

    return target


def test_event_target_stops_when_asked() -> None:
    svc = Host().start()
    entered = threading.Event()
    saw_stop: list[bool] = []
    assert svc.spawn_daemon(tick=waiter(entered, saw_stop)) == ["tick"]
    assert entered.wait(WAIT)
    assert svc.daemon_names() == ["tick"]
    assert len(threads_named("Host:tick")) == 1

    assert svc.terminate_daemon("tick", timeout=WAIT) == []
    assert saw_stop == [True]
    assert svc.daemon_names() == []
    assert threads_named("Host:tick") == []
    assert svc.is_running()  # stopping a daemon is not stopping the service


def test_zero_arg_target_is_stopped_by_teardown() -> None:
    svc = WorkerHost().start()
    worker = svc.app
    assert isinstance(worker, Worker)
    assert worker.started.wait(WAIT)
    assert svc.daemon_names() == ["worker"]

    began = time.monotonic()
    svc.stop(timeout=WAIT)
    assert time.monotonic() - began < WAIT + 1.0
    assert worker.stopped_by_library, "the zero-arg loop did not end through the library's stop"
    assert svc.teardowns == 1
    assert svc.daemon_names() == []
    assert threads_named("WorkerHost:worker") == []
    assert state_of(svc) is S.STOPPED


def test_live_name_is_not_spawned_twice() -> None:
    svc = Host().start()
    calls: list[str] = []
    entered = threading.Event()

    def first(stop: threading.Event) -> None:
        calls.append("first")
        entered.set()
        stop.wait(WAIT * 2)

    def second(stop: threading.Event) -> None:
        calls.append("second")
        stop.wait(WAIT * 2)

    assert svc.spawn_daemon(a=first) == ["a"]
    assert entered.wait(WAIT)
    assert svc.spawn_daemon(a=second) == []
    assert svc.spawn_daemon(a=second, b=second) == ["b"]
    assert sorted(svc.daemon_names()) == ["a", "b"]
    assert len(threads_named("Host:a")) == 1
    assert svc.terminate_daemon("a", "b", timeout=WAIT) == []
    assert sorted(calls) == ["first", "second"]  # "a" ran `first` only; `second` ran as "b"

    # Once the old one has ended, the name is free again.
    entered.clear()
    assert svc.spawn_daemon(a=first) == ["a"]
    assert entered.wait(WAIT)
    assert svc.terminate_daemon(timeout=WAIT) == []
    assert calls.count("first") == 2


def test_daemons_belong_to_their_instance() -> None:
    one, two = Host().start(), Host().start()
    entered_one, entered_two = threading.Event(), threading.Event()
    saw_one: list[bool] = []
    saw_two: list[bool] = []
    assert one.spawn_daemon(tick=waiter(entered_one, saw_one)) == ["tick"]
    assert two.spawn_daemon(tick=waiter(entered_two, saw_two)) == ["tick"]
    assert entered_one.wait(WAIT)
    assert entered_two.wait(WAIT)

    assert one.terminate_daemon("tick", timeout=WAIT) == []
    assert saw_one == [True]
    assert saw_two == []
    assert two.daemon_names() == ["tick"]
    two.stop(timeout=WAIT)
    assert saw_two == [True]


def test_crashing_daemon_fails_its_service(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jaseci_like")
    svc = Host().start()
    go = threading.Event()
    boom = Boom("disk gone")

    def crasher(stop: threading.Event) -> None:
        assert go.wait(WAIT)
        raise boom

    svc.spawn_daemon(crasher=crasher)
    assert svc.is_running()
    go.set()
    assert svc.failed_event.wait(WAIT), "the crash of a daemon did not fail its service"
    assert state_of(svc) is S.FAILED
    assert svc.has_failed()
    assert svc.error is boom
    assert svc.app is None
    assert "'crasher' crashed" in caplog.text
    # The crashed thread ends on its own; nothing is left to stop.
    assert svc.terminate_daemon(timeout=WAIT) == []


def test_daemon_raising_while_stopping_is_not_a_failure() -> None:
    svc = Host().start()
    entered = threading.Event()

    def grumpy(stop: threading.Event) -> None:
        entered.set()
        stop.wait(WAIT * 2)
        raise Boom("interrupted")

    svc.spawn_daemon(grumpy=grumpy)
    assert entered.wait(WAIT)
    svc.stop(timeout=WAIT)
    assert state_of(svc) is S.STOPPED
    assert svc.error is None
    assert not svc.failed_event.is_set()


def test_terminate_returns_the_names_still_alive() -> None:
    svc = Host().start()
    release = threading.Event()
    entered = threading.Event()
    polite_entered = threading.Event()
    saw_stop: list[bool] = []

    def stubborn(stop: threading.Event) -> None:
        entered.set()
        release.wait(WAIT * 2)  # ignores ``stop`` on purpose

    svc.spawn_daemon(stubborn=stubborn, polite=waiter(polite_entered, saw_stop))
    assert entered.wait(WAIT)
    assert polite_entered.wait(WAIT)
    try:
        began = time.monotonic()
        left = svc.terminate_daemon("stubborn", "polite", timeout=0.3)
        took = time.monotonic() - began
        assert left == ["stubborn"]
        assert took < 0.3 + 1.0, f"terminate_daemon(timeout=0.3) took {took:.2f}s"
        assert saw_stop == [True]
        assert svc.daemon_names() == ["stubborn"]
    finally:
        release.set()
    assert svc.terminate_daemon("stubborn", timeout=WAIT) == []
    assert threads_named("Host:stubborn") == []


def test_stop_leaves_no_thread_behind() -> None:
    before = set(threading.enumerate())
    svc = WorkerHost().start()
    entered = [threading.Event() for _ in range(3)]
    saw_stop: list[bool] = []
    svc.spawn_daemon(**{f"w{i}": waiter(e, saw_stop) for i, e in enumerate(entered)})
    assert all(e.wait(WAIT) for e in entered)
    assert svc.app.started.wait(WAIT)
    assert len(set(threading.enumerate()) - before) == 4

    svc.stop(timeout=WAIT)
    left = set(threading.enumerate()) - before
    assert left == set(), f"threads left behind: {sorted(t.name for t in left)}"
    assert saw_stop == [True, True, True]
    assert svc.daemon_names() == []


def test_target_needing_two_arguments_is_refused() -> None:
    svc = Host().start()

    def two(a: object, b: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="daemon 'pair'"):
        svc.spawn_daemon(pair=two)
    assert svc.daemon_names() == []
    assert svc.is_running()
