"""The supervisor: real services, real threads, a real redis-server killed with SIGKILL.

Nothing sleeps to synchronize: a test waits for a condition with :func:`wait_until`,
which polls it every few milliseconds and fails with a message at a deadline.
Intervals and backoffs are small so that a whole cycle takes milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from jaseci_like import (
    CommonService,
    ConfigApi,
    MemoryHook,
    MetaService,
    OrmHook,
    Runtime,
    ServiceConfig,
    ServiceState,
    hookimpl,
)
from jaseci_like.cli.main import _print_status
from jaseci_like.hooks import glob_table
from jaseci_like.supervisor import Supervisor, SupervisorConfig, describe_failure
from tests.plugin_fixtures import parse_table
from tests.procs import PROBE, PROBE_GLOB, ProbePlugin
from tests.servers import RedisServer

#: A safety net for what another thread must do; never a measurement.
WAIT = 10.0
#: Added to a computed bound on a restart's timing: scheduling on a loaded CI machine.
SLACK = 1.0
SECRET = "hunter2-very-secret"
S = ServiceState

#: Fast supervision for the tests that use the test services below.
FAST: dict[str, Any] = {
    "interval": 0.02,
    "backoff_base": 0.05,
    "backoff_cap": 0.2,
    "jitter": 0.2,
    "give_up_after": 50,
    "stable_after": 0.1,
}


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = WAIT) -> float:
    """Poll ``predicate`` every 2 ms until it holds; return ``time.monotonic()`` then.

    Fails the test, saying ``what`` was awaited, when ``timeout`` passes first.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout}s, in vain, until {what}")
        time.sleep(0.002)
    return time.monotonic()


# -- test services ----------------------------------------------------------------------


class Boom(Exception):
    """The failure the test services raise on purpose."""


class Settings(ServiceConfig):
    password: str = ""
    url: str = ""


class Supervised(CommonService):
    """Counts its runs; its daemon raises once each time ``crash`` is set; ``run``
    raises while ``broken`` is set. Subclasses change the name and the failure mode."""

    name = "supervised"
    config_schema = Settings
    default_config: ClassVar[Mapping[str, Any]] = {
        "enabled": True,
        "quiet": True,
        "password": SECRET,
        "url": f"postgresql://admin:{SECRET}@127.0.0.1:1/db",
    }
    #: run() always raises (with the secrets in its message, to see them masked).
    run_always_fails: ClassVar[bool] = False
    #: The daemon raises as soon as it starts, every time.
    daemon_always_crashes: ClassVar[bool] = False

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.runs = 0
        self.crash = threading.Event()
        self.broken = threading.Event()
        #: The thread of each daemon started, in order.
        self.daemons: list[threading.Thread] = []
        #: Whether the runtime's supervisor thread was alive at each teardown.
        self.supervisor_alive_at_teardown: list[bool] = []
        self.torn_down = threading.Event()
        self.runtime: Runtime | None = None
        super().__init__(hook)

    def run(self, hook: MemoryHook | None = None) -> None:
        self.runs += 1
        if self.run_always_fails or self.broken.is_set():
            c = self.config
            raise Boom(f"cannot log in with {c['password']} at {c['url']}")
        self.app = object()

    def post_run(self, hook: MemoryHook | None = None) -> None:
        self.spawn_daemon(work=self.work)

    def work(self, stop: threading.Event) -> None:
        self.daemons.append(threading.current_thread())
        if self.daemon_always_crashes:
            raise Boom("the daemon crashes at once")
        while not stop.is_set():
            # The service's own loop: wakes every few ms to look at both events.
            if self.crash.wait(0.005):
                self.crash.clear()
                raise Boom("the daemon crashed")

    def teardown(self) -> None:
        if self.runtime is not None:
            self.supervisor_alive_at_teardown.append(self.runtime.supervisor.running)
        self.torn_down.set()


class Plugin:
    """An in-code plugin providing the given service classes."""

    def __init__(self, *classes: type[CommonService]) -> None:
        self.classes = list(classes)

    @hookimpl
    def jaseci_like_services(self) -> list[type[CommonService]]:
        return self.classes


def supervisor_env(settings: Mapping[str, Any]) -> dict[str, str]:
    return {f"JASECI_LIKE__RUNTIME__SUPERVISOR__{k.upper()}": str(v) for k, v in settings.items()}


@dataclass
class Runtimes:
    """Starts runtimes on isolated registries and stops them all afterwards."""

    started: list[Runtime] = field(default_factory=list)

    def start(
        self,
        *classes: type[CommonService],
        supervision: Mapping[str, Any] = FAST,
        strict: bool = True,
    ) -> Runtime:
        """A runtime with only ``classes`` (no built-in plugin), started and supervised."""
        runtime = Runtime(
            environ=supervisor_env(supervision),
            meta=MetaService.isolated(),
            plugins={"supervised": Plugin(*classes)},
            discover=False,
        )
        self.started.append(runtime)
        runtime.start(strict=strict)
        for service in runtime.services():
            if isinstance(service, Supervised):
                service.runtime = runtime
        return runtime

    def close(self) -> None:
        for runtime in reversed(self.started):
            runtime.stop(timeout=5.0)


@pytest.fixture
def runtimes() -> Iterator[Runtimes]:
    made = Runtimes()
    yield made
    made.close()


def service_of(runtime: Runtime, name: str) -> Supervised:
    service = runtime.hook.services[name]
    assert isinstance(service, Supervised)
    return service


def status_table(runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    """The ``jaseci-like status`` table of ``runtime``, parsed by column."""
    capsys.readouterr()
    _print_status(runtime)
    return {row["SERVICE"]: row for row in parse_table(capsys.readouterr().out.splitlines())}


# -- backoff --------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_in_bounds() -> None:
    def supervisor(**settings: Any) -> Supervisor:
        return Supervisor(MetaService.isolated(), MemoryHook(), SupervisorConfig(**settings))

    exact = supervisor(backoff_base=0.1, backoff_cap=1.0, jitter=0)
    assert [exact.delay(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    # No overflow, however many failures: 2.0 ** 1_000_000 would raise.
    assert exact.delay(1_000_000) == 1.0

    jittery = supervisor(backoff_base=0.1, backoff_cap=1.0, jitter=0.2)
    for failures, nominal in [(1, 0.1), (3, 0.4), (20, 1.0)]:
        samples = [jittery.delay(failures) for _ in range(2000)]
        low, high = nominal * 0.8, min(1.0, nominal * 1.2)
        assert all(low - 1e-12 <= s <= high + 1e-12 for s in samples), (failures, samples)
        # Jitter is really drawn: both ends of the range are reached, roughly.
        assert min(samples) < nominal * 0.85
        assert max(samples) > min(nominal * 1.15, 0.99)

    with pytest.raises(ValidationError, match="backoff_cap"):
        SupervisorConfig(backoff_base=2.0, backoff_cap=1.0)


def test_secrets_of_a_service_are_masked_in_its_errors() -> None:
    service = Supervised()
    text = describe_failure(Boom(f"login as {SECRET} via redis://u:{SECRET}@h:1/0"), service)
    assert text is not None
    assert SECRET not in text
    assert "***" in text


# -- a daemon that crashes ---------------------------------------------------------------------


class Crashy(Supervised):
    name = "crashy"


def test_a_crashed_daemon_is_restarted_within_its_backoff(runtimes: Runtimes) -> None:
    runtime = runtimes.start(Crashy)
    crashy = service_of(runtime, "crashy")
    wait_until("the first daemon runs", lambda: len(crashy.daemons) == 1)

    crashed_at = time.monotonic()
    crashy.crash.set()
    wait_until("crashy fails", lambda: crashy.has_failed() or crashy.runs == 2)
    back_at = wait_until(
        "crashy runs again with a second daemon",
        lambda: crashy.is_running() and len(crashy.daemons) == 2 and bool(crashy.daemon_names()),
    )

    config = runtime.settings.supervisor
    bound = config.backoff_base * (1 + config.jitter) + config.interval + SLACK
    assert back_at - crashed_at <= bound, f"took {back_at - crashed_at:.3f}s, bound {bound:.3f}s"
    first, second = crashy.daemons
    assert second is not first and second.is_alive() and not first.is_alive()
    assert crashy.daemon_names() == ["work"]
    assert crashy.runs == 2
    state = runtime.supervisor.state("crashy")
    wait_until("the supervisor counts the restart", lambda: state.restarts >= 1)
    assert state.restarts == 1
    assert state.last_error == "Boom: the daemon crashed"
    # Once it has stayed healthy for stable_after, its failures are forgotten.
    wait_until("the restart holds", lambda: state.probation_until is None)
    assert (state.failures, state.gave_up, state.next_retry) == (0, False, None)
    assert crashy.error is None


# -- one that keeps failing ---------------------------------------------------------------------


class RunFails(Supervised):
    name = "run_fails"
    run_always_fails = True


class DaemonCrashes(Supervised):
    name = "daemon_crashes"
    daemon_always_crashes = True


@pytest.mark.parametrize("cls", [RunFails, DaemonCrashes], ids=lambda c: c.name)
def test_a_service_that_keeps_failing_is_given_up(
    runtimes: Runtimes, cls: type[Supervised], capsys: pytest.CaptureFixture[str]
) -> None:
    give_up_after = 4
    runtime = runtimes.start(
        cls, supervision={**FAST, "give_up_after": give_up_after, "stable_after": 5.0}, strict=False
    )
    service = service_of(runtime, cls.name)
    state = runtime.supervisor.state(cls.name)
    wait_until(f"the supervisor gives up on {cls.name}", lambda: state.gave_up)

    # The first start, then one run per attempt.
    assert service.runs == 1 + give_up_after
    assert state.failures == give_up_after
    wait_until(f"{cls.name} is FAILED", service.has_failed)
    passes = runtime.supervisor.passes
    wait_until("five more supervisor passes", lambda: runtime.supervisor.passes >= passes + 5)
    assert service.runs == 1 + give_up_after, "no attempt after giving up"
    assert service.state is S.FAILED

    (row,) = [r for r in runtime.status() if r.name == cls.name]
    assert (row.state, row.gave_up, row.retry_in) == ("FAILED", True, None)
    assert row.error is not None and "Boom" in row.error
    assert row.last_error is not None
    as_json = json.dumps(row.__dict__)  # what `status --json` prints
    for text in (row.error, row.last_error, as_json):
        assert SECRET not in text
    table = status_table(runtime, capsys)[cls.name]
    assert (table["STATE"], table["RETRY"]) == ("FAILED", "gave up")
    assert table["RESTARTS"] == str(row.restarts)
    assert SECRET not in table["ERROR"]
    if cls is RunFails:
        assert "***" in table["ERROR"]
        assert row.restarts == 0


# -- dependents -----------------------------------------------------------------------------------


class Base(Supervised):
    name = "base"


class Child(Supervised):
    name = "child"
    requires = ("base",)

    def run(self, hook: MemoryHook | None = None) -> None:
        assert hook is not None
        assert hook.services["base"].is_running(), "a dependent must run after its dependency"
        super().run(hook)


class GrandChild(Supervised):
    name = "grandchild"
    requires = ("child",)


def test_dependents_are_reset_after_their_dependency_comes_back(
    runtimes: Runtimes, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = runtimes.start(Base, Child, GrandChild)
    base, child, grandchild = (service_of(runtime, n) for n in ("base", "child", "grandchild"))
    assert (base.runs, child.runs, grandchild.runs) == (1, 1, 1)
    wait_until("the base daemon runs", lambda: len(base.daemons) == 1)

    # The base crashes and cannot start for a while: its dependents are left alone.
    base.broken.set()
    base.crash.set()
    state = runtime.supervisor.state("base")
    wait_until("two failed attempts to restart base", lambda: state.failures >= 2)
    assert base.has_failed() or base.state is S.STARTED
    assert (child.runs, grandchild.runs) == (1, 1)
    assert child.is_running() and grandchild.is_running()
    rows = status_table(runtime, capsys)
    assert rows["base"]["RETRY"] == "-" or rows["base"]["RETRY"].startswith("in ")

    base.broken.clear()
    wait_until("base runs again", base.is_running)

    # They kept what the old base gave them: each is replaced by a new instance,
    # started before the old one stops.
    def replaced(name: str, old: CommonService) -> bool:
        new = service_of(runtime, name)
        return new is not old and new.is_running() and old.state is S.STOPPED

    wait_until("the grandchild is replaced too", lambda: replaced("grandchild", grandchild))
    assert replaced("child", child)
    assert runtime.hook.services["child"] is service_of(runtime, "child")

    def restarts() -> dict[str, int]:
        return {n: runtime.supervisor.state(n).restarts for n in ("base", "child", "grandchild")}

    # Counted just after each reset returns: waited for, not raced.
    wait_until("a restart counted for each", lambda: min(restarts().values()) >= 1)
    assert restarts() == {"base": 1, "child": 1, "grandchild": 1}
    assert status_table(runtime, capsys)["child"]["RESTARTS"] == "1"


def test_a_failed_dependent_waits_for_its_dependency_without_spinning(
    runtimes: Runtimes, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = runtimes.start(Base, Child)
    base, child = service_of(runtime, "base"), service_of(runtime, "child")
    wait_until("both daemons run", lambda: len(base.daemons) == 1 and len(child.daemons) == 1)

    base.broken.set()
    base.crash.set()
    # Base down first: a child crashing while base still ran would be restarted at
    # once, and that restart fail on base (a failure counted, not a wait).
    wait_until("base has failed", base.has_failed)
    child.crash.set()
    base_state, child_state = runtime.supervisor.state("base"), runtime.supervisor.state("child")
    wait_until("child waits for base", lambda: child_state.waiting_for == "base")
    assert child.has_failed()
    assert status_table(runtime, capsys)["child"]["RETRY"] == "after base"

    # While base keeps failing, the supervisor checks on the interval (and at each
    # of base's retries), not in a busy loop, and never tries child.
    supervisor = runtime.supervisor
    failures, passes, began = base_state.failures, supervisor.passes, time.monotonic()
    wait_until("three more attempts on base", lambda: base_state.failures >= failures + 3)
    spent = time.monotonic() - began
    most = spent / runtime.settings.supervisor.interval + 3 + 10
    made = supervisor.passes - passes
    assert made <= most, f"{made} passes in {spent:.2f}s: the supervisor spins"
    assert child.runs == 1 and child_state.failures == 0

    base.broken.clear()
    wait_until("child runs again", lambda: child.is_running() and child.runs == 2)
    wait_until("the restart is counted", lambda: child_state.restarts == 1)
    assert child_state.waiting_for is None
    assert status_table(runtime, capsys)["child"]["RETRY"] == "-"


# -- stopping -----------------------------------------------------------------------------------


def test_the_supervisor_stops_before_the_services_and_leaves_no_thread(
    runtimes: Runtimes,
) -> None:
    runtime = runtimes.start(Base, Child)
    base, child = service_of(runtime, "base"), service_of(runtime, "child")
    passes = runtime.supervisor.passes
    wait_until("the supervisor checks", lambda: runtime.supervisor.passes >= passes + 2)
    assert runtime.supervisor.running

    runtime.stop(timeout=5.0)
    assert base.supervisor_alive_at_teardown == [False]
    assert child.supervisor_alive_at_teardown == [False]
    assert not runtime.supervisor.running
    assert (base.state, child.state) == (S.STOPPED, S.STOPPED)
    assert base.daemon_names() == [] and child.daemon_names() == []
    assert (base.runs, child.runs) == (1, 1)


class Slow(Supervised):
    """Its second run waits until the test lets it go: a restart caught by a stop."""

    name = "slow"
    entered: ClassVar[threading.Event]
    release: ClassVar[threading.Event]

    def run(self, hook: MemoryHook | None = None) -> None:
        if self.runs == 1:
            type(self).entered.set()
            type(self).release.wait(WAIT)
        super().run(hook)


class AfterSlow(Supervised):
    """Started after ``slow``, so stopped before it."""

    name = "after_slow"
    requires = ("slow",)


def test_a_restart_caught_by_a_stop_is_not_left_running(runtimes: Runtimes) -> None:
    Slow.entered, Slow.release = threading.Event(), threading.Event()
    runtime = runtimes.start(Slow, AfterSlow)
    slow, after = service_of(runtime, "slow"), service_of(runtime, "after_slow")
    wait_until("the daemon runs", lambda: len(slow.daemons) == 1)
    slow.crash.set()
    assert Slow.entered.wait(WAIT), "the supervisor did not restart slow"

    # The supervisor is stuck in slow's run: Runtime.stop goes on without it, and
    # slow, once its run returns, is stopped (by the runtime or by the supervisor).
    stopper = threading.Thread(target=runtime.stop, kwargs={"timeout": 2.0}, name="stopper")
    stopper.start()
    assert after.torn_down.wait(WAIT), "the stop did not go on while the supervisor was busy"
    assert runtime.supervisor.stopping and runtime.supervisor.running
    assert after.supervisor_alive_at_teardown == [True]  # busy, but no longer checking
    Slow.release.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()

    assert not runtime.supervisor.running
    assert slow.runs == 2
    assert not slow.is_running(), f"a service restarted during the stop was left {slow.state}"
    assert slow.daemon_names() == []
    assert runtime.supervisor.states["slow"].restarts == 0


# -- Redis killed and restarted ----------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    kind: str
    env: dict[str, str]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store("sqlite", {"JASECI_LIKE__DB__DATA_DIR": str(tmp_path / "data")})
    url: str = request.getfixturevalue("postgres_url")
    return Store("postgresql", {"JASECI_LIKE__DB__URL": url})


@dataclass
class Reader:
    """Reads the probe's config the whole time, through ConfigApi and the hook."""

    api: ConfigApi
    stop: threading.Event = field(default_factory=threading.Event)
    #: (monotonic time the read began, level read)
    reads: list[tuple[float, int]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def __call__(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                level = self.api.config_get(PROBE)["level"]
            except Exception as exc:  # the test fails on it, below
                self.errors.append(exc)
                return
            self.reads.append((began, level))

    def count_between(self, start: float, end: float) -> int:
        return sum(1 for t, _ in self.reads if start <= t < end)


def store_runtime(
    store: Store, redis_url: str | None = None, extra: Mapping[str, str] | None = None
) -> Runtime:
    """A runtime with the built-in db (and redis) services and ``probe``, fast supervision."""
    env = {"JASECI_LIKE__PLUGINS__ALLOW": "db,redis,profiles,probe", **store.env, **(extra or {})}
    if redis_url is not None:
        env.update({"JASECI_LIKE__REDIS__ENABLED": "true", "JASECI_LIKE__REDIS__URL": redis_url})
    env.update(supervisor_env({**FAST, "give_up_after": 1000}))
    return Runtime(environ=env, meta=MetaService.isolated(), plugins={PROBE: ProbePlugin()})


def stored_level(store: Store) -> int:
    """The probe's ``level`` as a fresh runtime reads it from the durable store alone."""
    check = store_runtime(store)
    try:
        check.start()
        engine = check.hook.services["db"].app
        stored = check.meta.loop.run(glob_table.load(engine, PROBE_GLOB))
        assert stored is not None, "the probe's config is not in the store"
        level = json.loads(stored)["level"]
        assert ConfigApi(check.hook).config_get(PROBE)["level"] == level
        assert isinstance(level, int)
        return level
    finally:
        check.stop(timeout=5.0)


def test_redis_killed_and_restarted(store: Store, redis_server_restartable: RedisServer) -> None:
    server = redis_server_restartable
    runtime = store_runtime(store, server.url)
    reader: Reader | None = None
    thread: threading.Thread | None = None
    try:
        runtime.start()
        redis_service = runtime.hook.services["redis"]
        hook = runtime.hook
        assert isinstance(hook, OrmHook) and hook.durable
        api = ConfigApi(hook)
        api.config_set(PROBE, {"level": 1})

        reader = Reader(api)
        thread = threading.Thread(target=reader, name="reader", daemon=True)
        thread.start()
        wait_until("the reader reads", lambda: len(reader.reads) > 10)

        killed_at = time.monotonic()
        server.kill()
        wait_until("the redis service fails", redis_service.has_failed)
        state = runtime.supervisor.states["redis"]
        wait_until("a failed restart attempt", lambda: state.failures >= 1)
        assert state.restarts == 0
        (row,) = [r for r in runtime.status() if r.name == "redis"]
        assert row.state != "RUNNING" and row.error

        api.config_set(PROBE, {"level": 2})  # while Redis is down
        set_at = time.monotonic()
        wait_until("reads after the change", lambda: reader.count_between(set_at, 1e18) > 10)

        back_at = time.monotonic()
        server.start()
        running_at = wait_until("the redis service runs again", redis_service.is_running)
        wait_until("the supervisor counts the restart", lambda: state.restarts == 1)
        wait_until("reads after the recovery", lambda: reader.count_between(running_at, 1e18) > 10)
        assert redis_service.health()
        assert state.failures >= 1 and not state.gave_up
        assert running_at - back_at < runtime.settings.supervisor.backoff_cap * 1.2 + SLACK
    finally:
        if reader is not None and thread is not None:
            reader.stop.set()
            thread.join(WAIT)
        runtime.stop(timeout=5.0)

    assert reader.errors == [], f"a read failed: {reader.errors[0]!r}"
    assert reader.count_between(killed_at, back_at) > 10, "no read during the outage"
    assert {level for _, level in reader.reads} <= {1, 2}
    stale = [(t, level) for t, level in reader.reads if t >= set_at and level != 2]
    assert stale == [], f"{len(stale)} reads after the change saw the old value"
    assert stored_level(store) == 2, "the value set during the outage was lost"


def test_a_redis_that_kept_its_data_serves_no_stale_config(
    tmp_path: Path, redis_server_restartable: RedisServer
) -> None:
    server = redis_server_restartable
    store = Store("sqlite", {"JASECI_LIKE__DB__DATA_DIR": str(tmp_path / "data")})
    # A paused server times out rather than refusing: keep each attempt short.
    runtime = store_runtime(store, server.url, {"JASECI_LIKE__REDIS__SOCKET_TIMEOUT": "0.2"})
    pid = server.pid
    assert pid is not None
    try:
        runtime.start()
        redis_service = runtime.hook.services["redis"]
        api = ConfigApi(runtime.hook)
        api.config_set(PROBE, {"level": 1})
        assert api.config_get(PROBE)["level"] == 1
        # Paused, not killed: unreachable for a while, its data kept.
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_until("the redis service fails", redis_service.has_failed)
            api.config_set(PROBE, {"level": 2})
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_until("the redis service runs again", redis_service.is_running)
        assert api.config_get(PROBE)["level"] == 2
    finally:
        runtime.stop(timeout=5.0)
