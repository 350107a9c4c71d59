"""The lifecycle of CommonService: start, fail, stop, reset, and a refused config."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from jaseci_like import (
    CommonService,
    ConfigError,
    IllegalTransition,
    MemoryHook,
    ServiceConfig,
    ServiceState,
)
from jaseci_like.config.layers import ConfigLayers
from jaseci_like.state import LEGAL_MOVES
from tests.states import state_of

S = ServiceState
ON: Mapping[str, Any] = MappingProxyType({"enabled": True})
QUIET: Mapping[str, Any] = MappingProxyType({"enabled": True, "quiet": True})
#: Long enough that a test waiting this long has failed, short enough not to hang CI.
WAIT = 5.0
SECRET = "s3cr3t-pw"


class Boom(Exception):
    """The failure the test services raise on purpose."""


class Settings(ServiceConfig):
    port: int = 0
    password: str = ""
    url: str = ""
    fail: bool = False


class Probe(CommonService):
    """Records what the lifecycle calls, and in which state it called it."""

    name = "probe"
    config_schema = Settings
    default_config = ON

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.calls: list[tuple[str, ServiceState]] = []
        self.run_error: BaseException | None = None
        self.post_run_error: BaseException | None = None
        super().__init__(hook)

    def count(self, what: str) -> int:
        return sum(1 for name, _ in self.calls if name == what)

    def run(self, hook: MemoryHook | None = None) -> None:
        self.calls.append(("run", self.state))
        if self.run_error is not None:
            raise self.run_error
        if self.config.get("fail"):
            raise Boom("config says fail")
        self.app = object()

    def post_run(self, hook: MemoryHook | None = None) -> None:
        self.calls.append(("post_run", self.state))
        if self.post_run_error is not None:
            raise self.post_run_error

    def failed(self) -> None:
        self.calls.append(("failed", self.state))
        super().failed()

    def teardown(self) -> None:
        self.calls.append(("teardown", self.state))


class QuietProbe(Probe):
    name = "quietprobe"
    default_config = QUIET


class NoAppProbe(Probe):
    """Reaches RUNNING without ever setting ``app``."""

    name = "noapp"

    def run(self, hook: MemoryHook | None = None) -> None:
        self.calls.append(("run", self.state))


def hook_with_env(environ: Mapping[str, str]) -> MemoryHook:
    return MemoryHook(ConfigLayers(environ=environ))


def service_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("jaseci_like")]


# -- start ---------------------------------------------------------------------------


def test_disabled_service_stays_not_started() -> None:
    class Off(Probe):
        name = "off"
        default_config = MappingProxyType({"enabled": False})

    svc = Off()
    assert svc.start() is svc
    assert svc.enabled is False
    assert state_of(svc) is S.NOT_STARTED
    assert svc.app is None
    assert svc.calls == []
    assert svc.is_ready()
    assert svc.error is None


def test_enabled_service_runs_then_post_runs() -> None:
    svc = Probe()
    assert svc.is_ready()
    assert svc.start() is svc
    assert svc.calls == [("run", S.STARTED), ("post_run", S.RUNNING)]
    assert state_of(svc) is S.RUNNING
    assert svc.is_running()
    assert not svc.is_ready()
    assert not svc.has_failed()
    assert svc.error is None
    assert "enabled" not in svc.config
    assert "quiet" not in svc.config
    assert svc.config["port"] == 0


def test_run_raising_marks_failed_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jaseci_like")
    svc = Probe()
    boom = Boom("backend unreachable")
    svc.run_error = boom
    assert svc.start() is svc  # start itself never raises
    assert state_of(svc) is S.FAILED
    assert svc.has_failed()
    assert not svc.is_running()
    assert svc.error is boom
    assert svc.app is None
    assert svc.count("failed") == 1
    assert svc.count("post_run") == 0
    skipping = [r for r in service_records(caplog) if r.getMessage().startswith("Skipping Probe")]
    assert skipping, f"no 'Skipping Probe' log line in {caplog.text!r}"
    assert "backend unreachable" in skipping[0].getMessage()


def test_quiet_service_fails_without_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="jaseci_like")
    svc = QuietProbe()
    svc.run_error = Boom("quietly broken")
    svc.start()
    assert state_of(svc) is S.FAILED
    assert svc.error is svc.run_error
    assert svc.count("failed") == 1
    assert service_records(caplog) == [], caplog.text


def test_start_on_running_service_does_nothing() -> None:
    svc = Probe().start()
    app = svc.app
    assert svc.start() is svc
    assert svc.count("run") == 1
    assert svc.app is app
    assert state_of(svc) is S.RUNNING


def test_start_on_failed_service_does_nothing() -> None:
    svc = Probe()
    svc.run_error = Boom("first")
    svc.start()
    first = svc.error
    svc.run_error = None  # would succeed now, but a FAILED service needs a reset
    svc.start()
    assert svc.count("run") == 1
    assert state_of(svc) is S.FAILED
    assert svc.error is first


def test_post_run_raising_marks_failed_and_releases_app() -> None:
    svc = Probe()
    boom = Boom("post_run broke")
    svc.post_run_error = boom
    svc.start()
    assert state_of(svc) is S.FAILED
    assert svc.error is boom
    assert svc.count("failed") == 1
    assert svc.count("teardown") == 1  # the default failed() releases what run made
    assert svc.app is None


def test_is_running_needs_app() -> None:
    svc = NoAppProbe().start()
    assert state_of(svc) is S.RUNNING
    assert svc.app is None
    assert not svc.is_running()
    assert not svc.is_ready()


# -- stop ----------------------------------------------------------------------------


def test_stop_goes_through_stopping_and_releases_app() -> None:
    svc = Probe().start()
    assert svc.stop() is svc
    assert svc.calls[-1] == ("teardown", S.STOPPING)
    assert state_of(svc) is S.STOPPED
    assert svc.app is None
    assert not svc.is_running()
    svc.stop()  # a second stop has nothing left to do
    assert svc.count("teardown") == 1
    assert state_of(svc) is S.STOPPED


def test_stop_of_not_started_service_does_nothing() -> None:
    svc = Probe()
    svc.stop()
    assert state_of(svc) is S.NOT_STARTED
    assert svc.calls == []
    assert svc.is_ready()


def test_stop_is_bounded_when_a_daemon_ignores_its_event() -> None:
    release = threading.Event()
    entered = threading.Event()

    def stubborn(stop: threading.Event) -> None:
        entered.set()
        release.wait(WAIT * 2)  # ignores ``stop`` on purpose

    svc = Probe().start()
    svc.spawn_daemon(stubborn=stubborn)
    assert entered.wait(WAIT)
    try:
        began = time.monotonic()
        svc.stop(timeout=0.3)
        took = time.monotonic() - began
        assert took < 0.3 + 1.0, f"stop(timeout=0.3) took {took:.2f}s"
        assert state_of(svc) is S.STOPPED
        assert svc.app is None
        assert svc.daemon_names() == ["stubborn"]
    finally:
        release.set()
    assert svc.terminate_daemon("stubborn", timeout=WAIT) == []


def test_stop_is_bounded_when_teardown_is_slow() -> None:
    release = threading.Event()

    class SlowTeardown(Probe):
        name = "slowteardown"

        def teardown(self) -> None:
            super().teardown()
            release.wait(3.0)

    svc = SlowTeardown().start()
    try:
        began = time.monotonic()
        svc.stop(timeout=0.3)
        took = time.monotonic() - began
    finally:
        release.set()
    assert took < 0.3 + 1.0, (
        f"stop(timeout=0.3) took {took:.2f}s: a slow teardown() is not bounded by the "
        "stop timeout (CommonService.stop calls teardown synchronously)"
    )
    assert state_of(svc) is S.STOPPED


# -- reset ---------------------------------------------------------------------------


def test_reset_of_failed_service_rereads_config_and_runs() -> None:
    hook = MemoryHook(ConfigLayers(environ={}))
    glob = Probe.config_glob()
    hook.save_glob(glob, {"enabled": True, "fail": True})
    svc = Probe(hook).start()
    assert state_of(svc) is S.FAILED
    assert isinstance(svc.error, Boom)

    hook.save_glob(glob, {"enabled": True, "fail": False, "port": 8080})
    assert svc.reset() is svc
    assert state_of(svc) is S.RUNNING
    assert svc.is_running()
    assert svc.error is None
    assert svc.config["fail"] is False
    assert svc.config["port"] == 8080
    assert svc.count("run") == 2


def test_reset_of_running_service_restarts_it() -> None:
    svc = Probe().start()
    first_app = svc.app
    svc.reset()
    assert state_of(svc) is S.RUNNING
    assert svc.count("teardown") == 1
    assert svc.count("run") == 2
    assert svc.app is not None
    assert svc.app is not first_app


def test_reset_without_start_leaves_it_ready() -> None:
    svc = Probe()
    svc.run_error = Boom("once")
    svc.start()
    assert svc.has_failed()
    svc.run_error = None
    svc.reset(start=False)
    assert state_of(svc) is S.NOT_STARTED
    assert svc.is_ready()
    assert svc.error is None
    assert svc.count("run") == 1
    svc.start()
    assert svc.is_running()


def test_reset_of_stopped_service_runs_again() -> None:
    svc = Probe().start().stop()
    svc.reset()
    assert svc.is_running()
    assert svc.count("run") == 2


# -- the state machine ---------------------------------------------------------------


def test_legal_moves_are_the_designed_ones() -> None:
    assert {
        (S.NOT_STARTED, S.STARTED),
        (S.STARTED, S.RUNNING),
        (S.RUNNING, S.STOPPING),
        (S.STOPPING, S.STOPPED),
        (S.STARTED, S.FAILED),
        (S.RUNNING, S.FAILED),
        (S.FAILED, S.NOT_STARTED),
        (S.STOPPED, S.NOT_STARTED),
    } == LEGAL_MOVES


@pytest.mark.parametrize(
    ("source", "target"),
    [pair for pair in itertools.product(S, S) if pair not in LEGAL_MOVES],
    ids=lambda s: s.name,
)
def test_illegal_move_is_refused(source: ServiceState, target: ServiceState) -> None:
    assert not source.can_move_to(target)
    with pytest.raises(IllegalTransition, match=f"from {source.name} to {target.name}"):
        source.check_move(target, "svc")


@pytest.mark.parametrize(("source", "target"), sorted(LEGAL_MOVES, key=str))
def test_legal_move_is_accepted(source: ServiceState, target: ServiceState) -> None:
    assert source.can_move_to(target)
    source.check_move(target, "svc")


def test_service_refuses_illegal_move_and_keeps_its_state() -> None:
    svc = Probe()
    with pytest.raises(IllegalTransition) as caught:
        svc._move(S.RUNNING)
    assert caught.value.code == "illegal_transition"
    assert state_of(svc) is S.NOT_STARTED
    svc.start()
    with pytest.raises(IllegalTransition):
        svc._move(S.NOT_STARTED)
    assert state_of(svc) is S.RUNNING


# -- bad config ----------------------------------------------------------------------

BAD_CONFIGS = [
    pytest.param(
        {"enabled": True, "port": "eighty"},
        {},
        ["bad.port", "'eighty'", "from default", "integer"],
        id="wrong-type-in-defaults",
    ),
    pytest.param(
        {"enabled": True, "colour": "blue"},
        {},
        ["bad.colour", "'blue'", "from default", "unknown key"],
        id="unknown-key-in-defaults",
    ),
    pytest.param(
        {"enabled": True},
        {"JASECI_LIKE__BAD__PORT": "eighty"},
        ["bad.port", "'eighty'", "env JASECI_LIKE__BAD__PORT", "integer"],
        id="wrong-type-in-env",
    ),
    pytest.param(
        {"enabled": True},
        {"JASECI_LIKE__BAD__COLOUR": "blue"},
        ["bad.colour", "'blue'", "env JASECI_LIKE__BAD__COLOUR", "unknown key"],
        id="unknown-key-in-env",
    ),
]


@pytest.mark.parametrize(("defaults", "environ", "expected"), BAD_CONFIGS)
def test_bad_config_fails_the_start_saying_why(
    defaults: dict[str, Any],
    environ: dict[str, str],
    expected: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Bad(Probe):
        name = "bad"
        default_config = MappingProxyType(defaults)

    caplog.set_level(logging.INFO, logger="jaseci_like")
    svc = Bad(hook_with_env(environ))
    assert isinstance(svc.error, ConfigError)
    message = str(svc.error)
    for part in expected:
        assert part in message, f"{part!r} missing from the config error {message!r}"
    assert state_of(svc) is S.NOT_STARTED  # until asked to start
    assert svc.start() is svc
    assert state_of(svc) is S.FAILED  # not an unexplained NOT_STARTED
    assert svc.error is not None and str(svc.error) == message
    assert svc.app is None
    assert svc.calls == [("failed", S.FAILED)]  # a start failure; run never ran
    assert "Skipping Bad" in caplog.text


def test_bad_value_in_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JASECI_LIKE__PROBE__PORT", "not-a-port")
    svc = Probe().start()
    assert isinstance(svc.error, ConfigError)
    assert "env JASECI_LIKE__PROBE__PORT" in str(svc.error)
    assert "'not-a-port'" in str(svc.error)
    assert state_of(svc) is S.FAILED
    assert svc.calls == [("failed", S.FAILED)]


def test_bad_stored_value_names_the_store() -> None:
    hook = MemoryHook(ConfigLayers(environ={}))
    hook.save_glob(Probe.config_glob(), {"enabled": True, "port": "x"})
    svc = Probe(hook).start()
    assert isinstance(svc.error, ConfigError)
    assert "probe.port = 'x' (from stored)" in str(svc.error)
    assert state_of(svc) is S.FAILED


def test_fixed_config_starts_after_reset() -> None:
    hook = MemoryHook(ConfigLayers(environ={}))
    glob = Probe.config_glob()
    hook.save_glob(glob, {"enabled": True, "port": "x"})
    svc = Probe(hook).start()
    assert isinstance(svc.error, ConfigError)
    hook.save_glob(glob, {"enabled": True, "port": 1})
    svc.reset()
    assert svc.is_running()
    assert svc.error is None
    assert svc.config["port"] == 1


# -- secrets -------------------------------------------------------------------------

SECRET_CONFIGS = [
    pytest.param(
        {"JASECI_LIKE__PROBE__DB_PASSWORD": SECRET},
        "probe.db_password = '***'",
        id="unknown-password-key",
    ),
    pytest.param(
        {"JASECI_LIKE__PROBE__PASSWORD": f'["{SECRET}"]'},
        "probe.password = '***'",
        id="wrong-type-password",
    ),
    pytest.param(
        {"JASECI_LIKE__PROBE__BROKER_URL": f"redis://admin:{SECRET}@cache:6379/0"},
        "redis://admin:***@cache:6379/0",
        id="url-with-credentials",
    ),
]


@pytest.mark.parametrize(("environ", "shown"), SECRET_CONFIGS)
def test_secrets_are_masked_in_config_errors_and_logs(
    environ: dict[str, str], shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jaseci_like")
    svc = Probe(hook_with_env(environ)).start()
    assert isinstance(svc.error, ConfigError)
    message = str(svc.error)
    assert shown in message
    assert SECRET not in message
    assert all(SECRET not in p for p in svc.error.problems)
    assert "configuration refused" in caplog.text
    assert SECRET not in caplog.text


def test_url_credentials_in_a_run_failure_are_masked_in_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="jaseci_like")
    svc = Probe()
    svc.run_error = Boom(f"cannot connect to postgresql://app:{SECRET}@db:5432/app")
    svc.start()
    assert svc.has_failed()
    assert "Skipping Probe" in caplog.text
    assert "postgresql://app:***@db:5432/app" in caplog.text
    assert SECRET not in caplog.text


def test_secret_default_is_masked_in_config_error(caplog: pytest.LogCaptureFixture) -> None:
    class Leaky(Probe):
        name = "leaky"
        default_config = MappingProxyType(
            {"enabled": True, "password": 1234, "extra_token": SECRET}
        )

    caplog.set_level(logging.DEBUG, logger="jaseci_like")
    svc = Leaky(hook_with_env({}))
    assert isinstance(svc.error, ConfigError)
    assert "leaky.extra_token = '***'" in str(svc.error)
    assert "leaky.password = '***'" in str(svc.error)
    assert SECRET not in str(svc.error)
    assert SECRET not in caplog.text
    assert svc.calls == []


@pytest.mark.parametrize(("enabled", "fails"), [("true", True), ("false", False)])
def test_a_refused_config_reads_enabled_as_the_schema_would(enabled: str, fails: bool) -> None:
    class Off(Probe):
        name = "off"
        default_config = MappingProxyType({"enabled": False})

    env = {"JASECI_LIKE__OFF__ENABLED": enabled, "JASECI_LIKE__OFF__PORT": "x"}
    svc = Off(hook_with_env(env)).start()
    assert isinstance(svc.error, ConfigError)
    assert svc.has_failed() is fails
    assert state_of(svc) is (S.FAILED if fails else S.NOT_STARTED)
    assert svc.count("run") == 0
