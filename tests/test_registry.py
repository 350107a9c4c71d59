"""MetaService: contexts, builders, background instances, hooks and dependency order."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from jaseci_like import (
    CommonService,
    DependencyError,
    DuplicateService,
    MemoryHook,
    MetaService,
    Registry,
    ServiceNotFound,
    ServiceState,
)
from tests.states import state_of

S = ServiceState
ON: Mapping[str, Any] = MappingProxyType({"enabled": True})
#: Long enough that a test waiting this long has failed, short enough not to hang CI.
WAIT = 5.0


class Journal:
    """What the services of one test did, in order, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[tuple[str, str]] = []

    def add(self, what: str, name: str) -> None:
        with self._lock:
            self.entries.append((what, name))

    def names(self, what: str) -> list[str]:
        with self._lock:
            return [name for kind, name in self.entries if kind == what]


def recording(
    journal: Journal, name: str, *, requires: tuple[str, ...] = (), enabled: bool = True
) -> type[CommonService]:
    """A service class named ``name`` that notes its runs and teardowns in ``journal``."""

    class Recorded(CommonService):
        def run(self, hook: MemoryHook | None = None) -> None:
            journal.add("run", self.service_name())
            self.app = object()

        def teardown(self) -> None:
            journal.add("stop", self.service_name())

    Recorded.name = name
    Recorded.requires = requires
    Recorded.default_config = MappingProxyType({"enabled": enabled})
    Recorded.__name__ = Recorded.__qualname__ = f"{name.capitalize()}Service"
    return Recorded


class Plain(CommonService):
    name = "plain"
    default_config = ON

    def run(self, hook: MemoryHook | None = None) -> None:
        self.app = object()


class Greeter:
    def __init__(self, greeting: str, *, punctuation: str = ".") -> None:
        self.greeting = greeting
        self.punctuation = punctuation


@pytest.fixture
def journal() -> Journal:
    return Journal()


# -- contexts ------------------------------------------------------------------------


def test_handles_on_one_registry_share_contexts() -> None:
    registry = Registry()
    first, second = MetaService(registry), MetaService(registry)
    first.add_context("greeter", Greeter, "hello", punctuation="!")
    assert second.get_context("greeter") == {
        "class": Greeter,
        "args": ("hello",),
        "kwargs": {"punctuation": "!"},
    }
    built = second.build_context("greeter")
    assert isinstance(built, Greeter)
    assert (built.greeting, built.punctuation) == ("hello", "!")
    with pytest.raises(ServiceNotFound, match="greeter"):
        MetaService.isolated().get_context("greeter")


def test_default_handles_share_the_process_registry() -> None:
    name = "test_registry_shared_context"
    first, second = MetaService(), MetaService()
    try:
        first.add_context(name, Greeter, "hi")
        assert second.get_context(name)["class"] is Greeter
        assert first.registry is second.registry
        with pytest.raises(ServiceNotFound):
            MetaService.isolated().get_context(name)
    finally:
        first.registry.contexts.pop(name, None)


def test_build_context_arguments_replace_the_stored_ones(meta: MetaService) -> None:
    meta.add_context("greeter", Greeter, "hello", punctuation="!")
    built = meta.build_context("greeter", "bye")
    assert (built.greeting, built.punctuation) == ("bye", "!")
    built = meta.build_context("greeter", punctuation="?")
    assert (built.greeting, built.punctuation) == ("hello", "?")
    assert meta.build_context("greeter") is not meta.build_context("greeter")


# -- builders and instances ----------------------------------------------------------


def test_duplicate_builder_is_refused(meta: MetaService) -> None:
    meta.add_service_builder("plain", Plain)

    class Other(Plain):
        pass

    with pytest.raises(DuplicateService, match=r"'plain'.*Plain.*Other"):
        meta.add_service_builder("plain", Other)
    assert meta.builder("plain") is Plain


def test_unknown_service_is_not_found(meta: MetaService) -> None:
    with pytest.raises(ServiceNotFound, match="'ghost'"):
        meta.get_service("ghost")


def test_disposable_builds_are_fresh(meta: MetaService) -> None:
    meta.add_service_builder("plain", Plain)
    one = meta.build_service("plain", False)
    two = meta.build_service("plain", False)
    try:
        assert one is not two
        assert one.is_running()
        assert two.is_running()
        kept = meta.get_service("plain")
        assert kept is not one
        assert kept is not two
    finally:
        one.stop()
        two.stop()


def test_background_build_replaces_and_stops_the_old_one(meta: MetaService) -> None:
    meta.add_service_builder("plain", Plain)
    old = meta.build_service("plain", True)
    assert meta.get_service("plain") is old
    new = meta.build_service("plain", True)
    assert new is not old
    assert state_of(old) is S.STOPPED
    assert old.app is None
    assert new.is_running()
    assert meta.get_service("plain") is new


def test_get_service_returns_one_instance(meta: MetaService) -> None:
    meta.add_service_builder("plain", Plain)
    first = meta.get_service("plain")
    assert first.is_running()
    assert meta.get_service("plain") is first
    assert MetaService(meta.registry).get_service("plain") is first


def test_64_threads_build_the_service_once(meta: MetaService) -> None:
    callers = 64
    cond = threading.Condition()
    arrived = 0
    built: list[CommonService] = []

    class Slow(Plain):
        def __init__(self, hook: MemoryHook | None = None) -> None:
            # Hold the first construction until every thread has asked, so they all race.
            with cond:
                built.append(self)
                cond.wait_for(lambda: arrived == callers, timeout=WAIT)
            super().__init__(hook)

    meta.add_service_builder("slow", Slow)
    barrier = threading.Barrier(callers, timeout=WAIT)
    results: list[CommonService] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def ask() -> None:
        nonlocal arrived
        try:
            barrier.wait()
            with cond:
                arrived += 1
                cond.notify_all()
            found = meta.get_service("slow")
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            results.append(found)

    threads = [threading.Thread(target=ask) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 2)
    assert not any(t.is_alive() for t in threads), "get_service callers still blocked"
    assert errors == []
    assert len(built) == 1, f"{len(built)} instances constructed"
    assert len(results) == callers
    assert all(found is built[0] for found in results)
    assert built[0].is_running()


# -- hooks and dependencies ----------------------------------------------------------


def test_build_hook_attaches_every_service(meta: MetaService, journal: Journal) -> None:
    meta.add_service_builder("alpha", recording(journal, "alpha"))
    meta.add_service_builder("beta", recording(journal, "beta", enabled=False))
    hook = meta.build_hook()
    assert hook.meta is meta
    assert hook.alpha is meta.get_service("alpha")
    assert hook.beta is meta.get_service("beta")
    assert hook.alpha.is_running()
    assert state_of(hook.beta) is S.NOT_STARTED  # disabled, but reachable
    assert journal.names("run") == ["alpha"]
    with pytest.raises(AttributeError, match="gamma"):
        _ = hook.gamma


def test_build_hook_uses_the_hook_context(meta: MetaService, journal: Journal) -> None:
    class MyHook(MemoryHook):
        pass

    meta.add_context("hook", MyHook)
    meta.add_service_builder("alpha", recording(journal, "alpha"))
    hook = meta.build_hook()
    assert type(hook) is MyHook
    assert hook.alpha.is_running()


def test_dependencies_start_first_and_stop_last(meta: MetaService, journal: Journal) -> None:
    meta.add_service_builder("web", recording(journal, "web", requires=("db", "cache")))
    meta.add_service_builder("db", recording(journal, "db"))
    meta.add_service_builder("cache", recording(journal, "cache", requires=("db",)))
    meta.build_hook()
    assert journal.names("run") == ["db", "cache", "web"]
    assert meta.stop_all(timeout=WAIT) == []
    assert journal.names("stop") == ["web", "cache", "db"]


def test_dependent_asked_first_still_stops_first(meta: MetaService, journal: Journal) -> None:
    meta.add_service_builder("web", recording(journal, "web", requires=("db",)))
    meta.add_service_builder("db", recording(journal, "db"))
    hook = meta.build_hook(start=False)
    web = meta.get_service("web", hook)  # builds db on the way, while web is starting
    assert web.is_running()
    assert journal.names("run") == ["db", "web"]
    meta.stop_all(timeout=WAIT)
    assert journal.names("stop") == ["web", "db"], (
        "stop_all must stop a dependent before what it depends on"
    )


def test_start_levels_are_topological(meta: MetaService, journal: Journal) -> None:
    meta.add_service_builder("a", recording(journal, "a"))
    meta.add_service_builder("b", recording(journal, "b"))
    meta.add_service_builder("c", recording(journal, "c", requires=("a", "b")))
    meta.add_service_builder("d", recording(journal, "d", requires=("c",)))
    levels = meta.start_levels()
    assert [sorted(level) for level in levels] == [["a", "b"], ["c"], ["d"]]


def test_cycle_is_a_clear_error_and_nothing_starts(meta: MetaService, journal: Journal) -> None:
    meta.add_service_builder("solo", recording(journal, "solo"))
    meta.add_service_builder("a", recording(journal, "a", requires=("b",)))
    meta.add_service_builder("b", recording(journal, "b", requires=("a",)))
    with pytest.raises(DependencyError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        meta.build_hook()
    assert journal.entries == []
    assert meta.registry.background == {}


def test_cycle_error_names_each_service_before_one_it_requires(
    meta: MetaService, journal: Journal
) -> None:
    requires = {"a": ("b",), "b": ("c",), "c": ("a",), "d": ("a",)}
    for name, deps in requires.items():
        meta.add_service_builder(name, recording(journal, name, requires=deps))
    with pytest.raises(DependencyError, match="dependency cycle: ") as raised:
        meta.start_levels()
    cycle = str(raised.value).removeprefix("dependency cycle: ").split(" -> ")
    assert len(cycle) == 4 and cycle[0] == cycle[-1], cycle
    assert sorted(cycle[:-1]) == ["a", "b", "c"], cycle  # d needs the cycle, is not in it
    for name, needed in itertools.pairwise(cycle):
        assert needed in requires[name], f"{name} -> {needed} but {name} requires {requires[name]}"


def test_self_dependency_is_a_cycle(meta: MetaService, journal: Journal) -> None:
    meta.add_service_builder("loop", recording(journal, "loop", requires=("loop",)))
    with pytest.raises(DependencyError, match="loop -> loop"):
        meta.build_hook()
    assert journal.entries == []


def test_missing_dependency_is_a_clear_error_and_nothing_starts(
    meta: MetaService, journal: Journal
) -> None:
    meta.add_service_builder("solo", recording(journal, "solo"))
    meta.add_service_builder("web", recording(journal, "web", requires=("ghost",)))
    with pytest.raises(DependencyError, match=r"'web' needs 'ghost'"):
        meta.build_hook()
    assert journal.entries == []
    assert meta.registry.background == {}


def test_disabled_dependency_fails_the_dependent(meta: MetaService, journal: Journal) -> None:
    meta.add_service_builder("db", recording(journal, "db", enabled=False))
    meta.add_service_builder("web", recording(journal, "web", requires=("db",)))
    hook = meta.build_hook()
    assert state_of(hook.web) is S.FAILED
    assert isinstance(hook.web.error, DependencyError)
    assert "'db'" in str(hook.web.error)
    assert "disabled" in str(hook.web.error)
    assert journal.names("run") == []


def test_blocking_starts_in_one_level_run_concurrently(meta: MetaService) -> None:
    # Passes only when both run() calls are inside at once; times out (and fails) otherwise.
    both_inside = threading.Barrier(2, timeout=WAIT)

    class Blocking(CommonService):
        start_blocks = True
        default_config = ON

        def run(self, hook: MemoryHook | None = None) -> None:
            both_inside.wait()
            self.app = object()

    class Left(Blocking):
        name = "left"

    class Right(Blocking):
        name = "right"

    meta.add_service_builder("left", Left)
    meta.add_service_builder("right", Right)
    hook = meta.build_hook()
    assert hook.left.error is None, f"left did not start concurrently: {hook.left.error!r}"
    assert hook.right.error is None, f"right did not start concurrently: {hook.right.error!r}"
    assert hook.left.is_running()
    assert hook.right.is_running()


def test_stop_all_stops_everything(meta: MetaService, journal: Journal) -> None:
    meta.add_service_builder("a", recording(journal, "a"))
    meta.add_service_builder("b", recording(journal, "b"))
    hook = meta.build_hook()
    assert meta.stop_all(timeout=WAIT) == []
    assert state_of(hook.a) is S.STOPPED
    assert state_of(hook.b) is S.STOPPED
    assert sorted(journal.names("stop")) == ["a", "b"]


@pytest.fixture
def shared_names() -> Iterator[list[str]]:
    """Builders a test adds to the process-wide registry, removed afterwards."""
    names: list[str] = []
    yield names
    registry = MetaService().registry
    for name in names:
        registry.builders.pop(name, None)
        service = registry.background.pop(name, None)
        if service is not None:
            service.stop()
        if name in registry.order:
            registry.order.remove(name)


def test_isolated_registry_does_not_see_shared_services(shared_names: list[str]) -> None:
    name = "test_registry_shared_plain"
    shared_names.append(name)
    MetaService().add_service_builder(name, Plain)
    assert MetaService().has_service_builder(name)
    assert not MetaService.isolated().has_service_builder(name)
