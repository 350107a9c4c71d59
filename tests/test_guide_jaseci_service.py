"""The Jaseci service guide (``shared/seeds/jaseci-how-to-use-service.txt``), run as written.

Each test transcribes one part of the guide: CommonService's attributes, settings
and life cycle, MetaService's usage, the common builders, and the StripeService
example. Only obvious typos are fixed (each is named where it is). Everything runs
on the shared ``MetaService()`` registry, as the guide's code does; a fixture gives
each test a fresh one and a scratch data directory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

import jaseci_like.meta
from jaseci_like import (
    CommonService,
    ConfigError,
    MemoryHook,
    MetaService,
    OrmHook,
    RedisHook,
    Registry,
    Runtime,
    ServiceState,
)
from jaseci_like.errors import ContextNotFound
from jaseci_like.master import Master, SuperMaster
from jaseci_like.supervisor import Supervisor, SupervisorConfig
from tests import plugin_dist
from tests.plugin_fixtures import Cli, parse_table
from tests.states import state_of

pytest_plugins = ["tests.plugin_fixtures"]

#: The services of the built-in plugins that the guide's build_hook names.
SEED_NAMES = ("kube", "redis", "task", "mail")

# The guide's kube glob: ``yaml.safe_load_all`` documents grouped by kind.
REDIS_KUBE: dict[str, list[dict[str, Any]]] = {
    "ServiceAccount": [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "labels": {"app.kubernetes.io/name": "kube-state-metrics"},
                "name": "jaseci-prometheus-kube-state-metrics",
                "namespace": "default",
            },
            "imagePullSecrets": [],
        }
    ]
}
STRIPE_CONFIG = {"enabled": True, "quiet": True, "key": "sk_test_4eC39HqLyjWDarjtT1zdp7dc"}


@pytest.fixture(autouse=True)
def shared_meta(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Registry]:
    """A fresh shared registry (what ``MetaService()`` gives) and a scratch data dir."""
    for var in ("JASECI_LIKE_CONFIG", "JASECI_LIKE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    # build_hook starts the built-in api too: on a free port, not the shared default.
    monkeypatch.setenv("JASECI_LIKE__API__PORT", "0")
    registry = Registry()
    monkeypatch.setattr(jaseci_like.meta, "_SHARED", registry)
    yield registry
    MetaService(registry).clear()


@pytest.fixture
def no_plugins(shared_meta: Registry) -> Registry:
    """The shared registry without the installed plugins (for tests of one service)."""
    shared_meta.plugins_loaded = True
    return shared_meta


# -- a library the guide's task example drives: a worker and a scheduler loop ------------


class Loops:
    """What the guide's ``self.app`` is in its post_run example (Celery there): it
    makes blocking loops (``Worker(...).start``, ``Beat(...).run``) and ends them all
    on ``terminate()``."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.entered: list[str] = []

    def Worker(self, quiet: bool = False) -> Loops.Loop:
        return Loops.Loop(self, "worker")

    def Beat(self, socket_timeout: float | None = None, quiet: bool = False) -> Loops.Loop:
        return Loops.Loop(self, "scheduler")

    def terminate(self) -> None:
        self.done.set()

    class Loop:
        def __init__(self, owner: Loops, name: str) -> None:
            self.owner, self.name = owner, name

        def start(self) -> None:
            self.owner.entered.append(self.name)
            self.owner.done.wait()

        run = start


# -- CommonService: attributes, settings, life cycle -----------------------------------


class TaskLikeService(CommonService):
    """Every override of the guide's "Service Life Cycle", in one service."""

    runs = 0

    def __init__(self, hook: MemoryHook | None = None) -> None:
        super().__init__(hook)  # run CommonService init
        self.terminated = 0

    def build_kube(self, hook: MemoryHook) -> dict[str, Any]:
        return hook.service_glob("REDIS_KUBE", REDIS_KUBE)  # common implementation

    def build_config(self, hook: MemoryHook) -> dict[str, Any]:
        return hook.service_glob(
            "TASKLIKE_CONFIG", {"enabled": True, "quiet": True, "field1": "val1"}
        )

    def run(self, hook: MemoryHook | None = None) -> None:
        self.__convert_config(hook)
        self.app = self.connect()
        type(self).runs += 1

    def __convert_config(self, hook: MemoryHook | None) -> None:
        self.field1 = self.config["field1"]

    def connect(self) -> Loops:
        return Loops()

    def post_run(self, hook: MemoryHook | None = None) -> None:
        self.spawn_daemon(
            worker=self.app.Worker(quiet=self.quiet).start,
            scheduler=self.app.Beat(socket_timeout=None, quiet=self.quiet).run,
        )

    def failed(self) -> None:
        super().failed()
        self.terminate_daemon("worker", "scheduler")

    def reset(self, hook: MemoryHook | None = None, start: bool = True) -> TaskLikeService:
        if self.is_running():
            self.app.terminate()  # app needs to be terminated before the actual reset
            self.terminated += 1
        return super().reset(hook)

    def teardown(self) -> None:
        self.app.terminate()  # the zero-argument daemons end when their library stops


def test_common_attributes_and_free_form_settings(no_plugins: Registry) -> None:
    hook = MemoryHook()
    service = TaskLikeService(hook)
    assert service.state is ServiceState.NOT_STARTED  # initial state
    assert service.is_ready()
    assert service.enabled and service.quiet  # from the config's structure
    assert dict(service.config) == {"field1": "val1"}  # enabled / quiet taken out
    assert service.kube == REDIS_KUBE  # grouped by kind, as the guide's structure
    # The glob holds the defaults now: "automatically add default config".
    assert json.loads(hook.get_glob("TASKLIKE_CONFIG") or "") == {
        "enabled": True,
        "quiet": True,
        "field1": "val1",
    }
    assert service.app is None


def test_the_life_cycle_runs_as_the_guide_tells(no_plugins: Registry) -> None:
    meta = MetaService()
    meta.add_service_builder("tasklike", TaskLikeService)
    hook = meta.build_hook()
    service = meta.get_service("tasklike", hook)
    assert isinstance(service, TaskLikeService)
    assert service.is_running() and service.state is ServiceState.RUNNING
    assert service.field1 == "val1"
    assert sorted(service.daemon_names()) == ["scheduler", "worker"]

    # start on a running service runs nothing.
    runs = TaskLikeService.runs
    service.start(hook)
    assert TaskLikeService.runs == runs

    # Config changed with save_glob, then reset(hook): running with the new value.
    hook.save_glob("TASKLIKE_CONFIG", {"enabled": True, "quiet": True, "field1": "val2"})
    assert service.reset(hook) is service
    assert service.terminated == 1
    assert service.is_running() and service.field1 == "val2"
    assert TaskLikeService.runs == runs + 1

    # stop() ends the daemons, zero-argument ones included (the library stops them).
    service.stop()
    assert state_of(service) is ServiceState.STOPPED
    assert service.daemon_names() == []
    assert service.app is None


class FailingRun(TaskLikeService):
    def run(self, hook: MemoryHook | None = None) -> None:
        type(self).runs += 1
        raise RuntimeError("no server at 127.0.0.1:1")


class FailingPostRun(TaskLikeService):
    def post_run(self, hook: MemoryHook | None = None) -> None:
        super().post_run(hook)
        raise RuntimeError("the scheduler could not start")


@pytest.mark.parametrize("cls", [FailingRun, FailingPostRun])
def test_a_failing_start_is_failed_kept_and_not_rerun(
    no_plugins: Registry, cls: type[TaskLikeService]
) -> None:
    meta = MetaService()
    meta.add_service_builder("failing", cls)
    hook = meta.build_hook()
    service = meta.get_service("failing", hook)
    assert service.has_failed() and service.state is ServiceState.FAILED
    assert isinstance(service.error, RuntimeError)
    assert service.daemon_names() == []  # failed() terminated them
    runs = cls.runs
    service.start(hook)  # a second start on a FAILED service runs nothing
    assert cls.runs == runs
    assert service.has_failed()


class QuietRefused(CommonService):
    """The guide's config with a value no glob can hold (not JSON)."""

    def build_config(self, hook: MemoryHook) -> dict[str, Any]:
        config = hook.service_glob("QUIETREFUSED_CONFIG", {"enabled": True, "quiet": True})
        return {**config, "when": {1, 2}}


def test_a_refused_quiet_config_fails_its_start_with_the_reason(
    no_plugins: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    meta = MetaService()
    meta.add_service_builder("quietrefused", QuietRefused)
    hook = meta.build_hook()
    service = meta.get_service("quietrefused", hook)
    assert service.state is ServiceState.FAILED
    assert isinstance(service.error, ConfigError)
    assert "quietrefused.when" in str(service.error)
    assert "quietrefused" not in caplog.text.lower()  # quiet quiets the log only

    supervisor = Supervisor(meta, hook, SupervisorConfig(interval=60))
    supervisor.check_once()
    assert "quietrefused.when" in (supervisor.state("quietrefused").last_error or "")


# -- MetaService usage -----------------------------------------------------------------


def test_contexts_as_the_guide_shows(no_plugins: Registry) -> None:
    args = ()
    kwargs = {"cache_service": "redis"}
    ms1 = MetaService()
    ms1.add_context("hook", RedisHook, *args, **kwargs)  # args/kwargs are optional

    ms2 = MetaService()
    assert ms2.get_context("hook")["class"] == RedisHook
    assert ms2.get_context("hook")["args"] == args
    assert ms2.get_context("hook")["kwargs"] == kwargs

    ms2.add_context("hook2", RedisHook, *args, **kwargs)
    # is equal to
    MetaService().add_context("hook2", RedisHook, *args, **kwargs)

    ms3 = MetaService()
    ms3.add_context("hook", OrmHook, *args, **kwargs)  # overrides RedisHook with OrmHook
    assert MetaService().get_context("hook")["class"] == OrmHook

    hook = ms1.build_context("hook")  # hook will be an OrmHook instance now
    assert isinstance(hook, OrmHook)

    # Where the seed returned None, an unknown name is a LookupError naming it.
    with pytest.raises(ContextNotFound, match="'nope'") as caught:
        ms1.get_context("nope")
    assert isinstance(caught.value, LookupError)


class StripeService(CommonService):  # the guide: `class StripeService(Co)`
    def run(self) -> None:  # type: ignore[override]  # the guide's signature
        self.app = stripe
        self.app.api_key = self.config.get("key")

    def build_config(self, hook: MemoryHook) -> dict[str, Any]:
        return hook.service_glob("STRIPE_CONFIG", STRIPE_CONFIG)

    # The guide leaves out `self` in these three.
    def other_method_for_automation1(self) -> str:
        return "run_payment"

    def other_method_for_automation2(self) -> str:
        return "run_add_user"

    def other_method_for_automation3(self) -> str:
        return "run_remove_user"


def test_the_stripe_example(shared_meta: Registry) -> None:
    meta = MetaService()
    meta.add_service_builder("stripe", StripeService)  # the guide: add_service_build
    hook = meta.build_hook()

    # for disposable service
    stripe_service = meta.build_service("stripe", False, hook)
    assert stripe_service.is_running()
    assert stripe_service.app is stripe
    assert stripe_service.app.api_key == STRIPE_CONFIG["key"]
    assert meta.get_service("stripe", hook) is not stripe_service
    stripe_service.stop()

    # for reusable service
    stripe_service1 = meta.get_service("stripe", hook)
    stripe_service2 = meta.get_service("stripe", hook)
    stripe_service3 = meta.get_service("stripe", hook)
    assert stripe_service1 is stripe_service2 is stripe_service3
    assert isinstance(stripe_service2, StripeService)
    assert isinstance(stripe_service3, StripeService)
    assert stripe_service2.other_method_for_automation2() == "run_add_user"
    assert stripe_service3.other_method_for_automation3() == "run_remove_user"
    assert dict(stripe_service1.config) == {"key": STRIPE_CONFIG["key"]}


# -- Common builders ----------------------------------------------------------------------


def test_build_hook_reaches_the_built_in_services(shared_meta: Registry) -> None:
    ms1 = MetaService()
    ms1.add_context("hook", RedisHook)
    hook = ms1.build_hook()  # hook will be a RedisHook instance
    assert isinstance(hook, RedisHook)
    assert hook.meta is ms1
    for name in SEED_NAMES:
        service = getattr(hook, name)
        assert service is ms1.get_service(name), name
    assert hook.kube.state is ServiceState.NOT_STARTED  # off unless configured


@pytest.mark.parametrize(
    ("build", "cls"), [("build_master", Master), ("build_super_master", SuperMaster)]
)
def test_masters_reach_every_service_through_h(
    shared_meta: Registry, build: str, cls: type[Master]
) -> None:
    ms1 = MetaService()
    master = getattr(ms1, build)()
    assert isinstance(master, cls)
    h = master._h
    assert isinstance(h, MemoryHook) and h.meta is ms1
    assert set(SEED_NAMES) <= set(ms1.service_names())
    for name in ms1.service_names():
        assert getattr(h, name) is ms1.get_service(name), name


class Element:
    """A master of the host's own, taking the hook as Jaseci's elements do: ``h=``."""

    def __init__(self, name: str, h: MemoryHook) -> None:
        self.name, self._h = name, h


def test_a_registered_master_class_gets_the_hook(no_plugins: Registry) -> None:
    ms1 = MetaService()
    ms1.add_context("hook", RedisHook)
    ms1.add_context("master", Element, "admin")
    master = ms1.build_master()
    assert isinstance(master, Element) and master.name == "admin"
    assert isinstance(master._h, RedisHook)
    given = MemoryHook()
    assert ms1.build_master(h=given)._h is given


# -- the guide's service as a plugin, seen from the command line -----------------------

_SEED_PLUGIN = """
from jaseci_like import CommonService, ServiceConfig, hookimpl


class StripeConfig(ServiceConfig):
    key: str


class StripeService(CommonService):
    config_schema = StripeConfig

    def run(self):
        self.app = object()

    def build_config(self, hook):
        return hook.service_glob("STRIPE_CONFIG", {"enabled": True, "quiet": True, "key": 42})


class PaymentsService(CommonService):
    # The guide's way: no schema, so every key its layers give is kept.

    def run(self):
        self.app = dict(self.config)

    def build_config(self, hook):
        return hook.service_glob(
            "PAYMENTS_CONFIG", {"enabled": True, "quiet": True, "retries": 3, "region": "eu"}
        )


@hookimpl
def jaseci_like_services():
    return [StripeService, PaymentsService]
"""


@pytest.fixture(scope="module")
def seed_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = plugin_dist.Dist(
        name="jl-seed-plugin",
        package="jl_seed_plugin",
        files={"plugin.py": _SEED_PLUGIN},
        entry_points={"seed": "jl_seed_plugin.plugin"},
    )
    return plugin_dist.build_site(tmp_path_factory.mktemp("seed"), [dist])


def test_status_shows_why_a_quiet_config_was_refused(cli: Cli, seed_site: Path) -> None:
    env = {"JASECI_LIKE__API__ENABLED": "false"}
    done = cli.run("status", "--local", env=env, sites=[seed_site])
    assert done.returncode == 5, done.stderr  # a service failed to start
    rows = {row["SERVICE"]: row for row in parse_table(done.stdout.splitlines())}
    assert rows["stripe"]["STATE"] == "FAILED"
    assert "stripe.key" in rows["stripe"]["ERROR"]
    assert "valid string" in rows["stripe"]["ERROR"]
    assert rows["db"]["STATE"] == "RUNNING"


def test_runtime_start_names_the_refused_service(seed_site: Path, no_plugins: Registry) -> None:
    from tests.plugin_fixtures import on_sys_path

    with on_sys_path(seed_site):
        runtime = Runtime(environ={"JASECI_LIKE__API__ENABLED": "false"}, meta=MetaService())
        try:
            runtime.start(strict=False)
            rows = {row.name: row for row in runtime.status()}
            assert rows["stripe"].state == "FAILED"
            assert "stripe.key" in (rows["stripe"].error or "")
        finally:
            runtime.stop()


def test_free_form_keys_from_the_command_line(cli: Cli, seed_site: Path) -> None:
    env = {"JASECI_LIKE__API__ENABLED": "false", "JASECI_LIKE__PAYMENTS__LIMITS": "[1, 2]"}
    done = cli.run("config", "set", "payments.retries", "5", env=env, sites=[seed_site])
    assert done.returncode == 0, done.stderr
    done = cli.run("config", "set", "payments.region", "us-east", env=env, sites=[seed_site])
    assert done.returncode == 0, done.stderr
    done = cli.run("config", "get", "payments.retries", env=env, sites=[seed_site])
    assert (done.returncode, done.stdout.strip()) == (0, "5"), done.stderr  # JSON, not "5"
    shown = cli.run("config", "show", "payments", "--origin", env=env, sites=[seed_site])
    assert shown.returncode == 0, shown.stderr
    rows = {r["KEY"]: r for r in parse_table(shown.stdout.splitlines())}
    assert rows["payments.retries"]["VALUE"] == "5"
    assert rows["payments.retries"]["ORIGIN"] == "stored"
    assert rows["payments.region"]["VALUE"] == '"us-east"'  # not JSON: kept as text
    assert rows["payments.limits"]["VALUE"] == "[1, 2]"
    assert rows["payments.limits"]["ORIGIN"] == "env JASECI_LIKE__PAYMENTS__LIMITS"
    assert rows["payments.quiet"]["ORIGIN"] == "default"


def test_free_form_environment_values_are_json(no_plugins: Registry) -> None:
    class Payments(CommonService):
        def build_config(self, hook: MemoryHook) -> dict[str, Any]:
            return hook.service_glob("PAYMENTS_CONFIG", {"enabled": True, "retries": 3})

    from jaseci_like.config.layers import ConfigLayers

    env = {
        "JASECI_LIKE__PAYMENTS__RETRIES": "7",
        "JASECI_LIKE__PAYMENTS__LIVE": "true",
        "JASECI_LIKE__PAYMENTS__NAME": "shop",
        "JASECI_LIKE__PAYMENTS__NESTED__DEPTH": "2.5",
    }
    service = Payments(MemoryHook(ConfigLayers(environ=env))).start()
    assert service.error is None
    assert dict(service.config) == {
        "retries": 7,
        "live": True,
        "name": "shop",
        "nested": {"depth": 2.5},
    }
