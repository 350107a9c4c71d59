"""JsOrc: keep-alive services deployed through the kube stand-in, restarted through
the supervisor (one restart path), and the leader check.

The cluster is ``tests/kube_standin.py`` reached by the real ``kubernetes`` client;
the test plays the kubelet (pods Running and Ready) and the endpoints controller.
The redis test points the Endpoints at a real ``redis-server`` it started.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
import yaml
from jaseci_like_services.jsorc import JsOrcService, Status, Step
from jaseci_like_services.jsorc import plugin as jsorc_plugin
from jaseci_like_services.jsorc.report import STATUS_GLOB
from jaseci_like_services.kube import plugin as kube_plugin
from jaseci_like_services.redis import plugin as redis_plugin
from sqlalchemy import text

from jaseci_like import CommonService, ConfigApi, MemoryHook, MetaService, Runtime, hookimpl
from tests.kube_standin import KubeStandIn
from tests.plugin_fixtures import Cli
from tests.servers import LOOPBACK, RedisServer, free_port

pytest_plugins = ["tests.plugin_fixtures"]

T = TypeVar("T")
WAIT = 60.0
TOKEN = "jsorc-kube-token-3b9d1e"
NAMESPACE = "jl"
#: Fast passes and restarts, so each test takes seconds.
FAST_JSORC = {
    "interval": 0.1,
    "wait_timeout": 30,
    "wait_poll": 0.05,
    "backoff_base": 0.05,
    "backoff_cap": 0.2,
}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT) -> T:
    """``probe()`` until it gives something truthy (an empty list is nothing yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.02)  # polling state other threads change: no event to wait on
    raise AssertionError(f"timed out waiting for {what}")


class ServicesPlugin:
    def __init__(self, *classes: type[CommonService]) -> None:
        self.classes = list(classes)

    @hookimpl
    def jaseci_like_services(self) -> list[type[CommonService]]:
        return self.classes


class Switchable(CommonService):
    """A service whose server is "up" while its class's ``available`` event is set;
    ``runs`` counts its starts (every restart is one)."""

    available: ClassVar[threading.Event]
    runs: ClassVar[list[float]]
    default_config: ClassVar[Mapping[str, Any]] = {"enabled": True}

    def run(self, hook: MemoryHook | None = None) -> None:
        type(self).runs.append(time.monotonic())
        if not self.available.is_set():
            raise ConnectionError(f"{self.name}: its server is not there")
        self.app = object()

    def health(self) -> bool:
        return self.available.is_set()


def switchable(name: str, manifest: Path | None = None) -> type[Switchable]:
    """A :class:`Switchable` service class of its own, named ``name``."""
    attrs: dict[str, Any] = {
        "name": name,
        "kube_manifest": manifest,
        "available": threading.Event(),
        "runs": [],
    }
    return type(f"{name.title()}Service", (Switchable,), attrs)


@contextmanager
def runtime_of(
    folder: Path,
    sections: Mapping[str, Any],
    plugins: Mapping[str, object],
    supervisor: Mapping[str, Any] | None = None,
) -> Iterator[Runtime]:
    runtime_section: dict[str, Any] = {
        "supervisor": {"interval": 0.05, "backoff_base": 0.05, "stable_after": 0.2}
    }
    runtime_section["supervisor"].update(supervisor or {})
    config = folder / f"config-{len(list(folder.glob('config-*.yaml')))}.yaml"
    config.write_text(yaml.safe_dump({"runtime": runtime_section, **sections}))
    runtime = Runtime(
        config_file=config,
        environ={},
        meta=MetaService.isolated(),
        discover=False,
        plugins={"jsorc": jsorc_plugin, **plugins},
    )
    try:
        runtime.start(strict=False)
        yield runtime
    finally:
        runtime.stop(timeout=10.0)


def jsorc_of(runtime: Runtime) -> JsOrcService:
    service = runtime.hook.jsorc
    assert isinstance(service, JsOrcService), service
    assert service.is_running(), service.error
    return service


def steps_of(status: Status, service: str) -> list[Step]:
    return [s for s in status.recent if s.service == service]


def kube_section(api: KubeStandIn) -> dict[str, Any]:
    return {"enabled": True, "host": api.url, "token": TOKEN, "manage": [], "namespace": NAMESPACE}


@pytest.fixture
def api() -> Iterator[KubeStandIn]:
    with KubeStandIn(token=TOKEN) as server:
        yield server


# -- with kube ------------------------------------------------------------------------------


def test_redis_manifests_are_deployed_then_redis_restarted(
    api: KubeStandIn, tmp_path: Path
) -> None:
    port = free_port()
    sections = {
        "kube": kube_section(api),
        "redis": {"enabled": True, "port": port, "socket_connect_timeout": 0.2},
        "jsorc": {"enabled": True, "keep_alive": ["redis"], **FAST_JSORC},
    }
    plugins = {"kube": kube_plugin, "redis": redis_plugin}
    redis = RedisServer(port=port)  # started once its pod is "ready"
    try:
        with runtime_of(tmp_path, sections, plugins) as runtime:
            jsorc = jsorc_of(runtime)
            assert runtime.hook.redis.has_failed()

            def did(action: str, outcome: str) -> bool:
                return (action, outcome) in [(s.action, s.outcome) for s in jsorc.status.recent]

            wait_for("jsorc deployed redis", lambda: did("deploy", "ok"))
            deployment = api.get("Deployment", "jaseci-like-redis", NAMESPACE)
            assert deployment is not None
            assert deployment["metadata"]["labels"]["jaseci-like.io/managed-by"] == "jaseci-like"
            assert api.get("Service", "jaseci-like-redis", NAMESPACE) is not None
            # The pod is Pending: jsorc waits and hands nothing to the supervisor.
            assert not did("restart", "ok")
            assert api.set_pods("jaseci-like-redis", NAMESPACE) == 1
            api.set_endpoints("jaseci-like-redis", NAMESPACE, [LOOPBACK], port)
            wait_for("jsorc handing redis to the supervisor", lambda: did("restart", "ok"))
            assert did("wait", "ok")
            redis.start()
            wait_for("redis running", runtime.hook.redis.is_running)
            assert runtime.hook.redis.health()
            created = next(s for s in jsorc.status.recent if s.action == "deploy")
            assert "create Deployment/jaseci-like-redis" in created.detail
            writes = api.writes()
            assert {w.method for w in writes} == {"POST"}  # created; nothing deleted or patched
            posted = [w.body["kind"] for w in writes]
            assert posted.index("Service") < posted.index("Deployment")  # the kube order
            sample = jsorc.metrics.registry.get_sample_value(
                "jsorc_actions_total", {"service": "redis", "action": "deploy", "outcome": "ok"}
            )
            assert sample is not None and sample >= 1
            assert TOKEN not in jsorc.status.to_json()
    finally:
        redis.close()


WEB_CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}}
WEB_CLAIM = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "web-data"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}
WEB_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
}
WEB_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}


def write(path: Path, *docs: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False))
    return path


def test_a_changed_manifest_is_patched_and_a_claim_is_never_deleted(
    api: KubeStandIn, tmp_path: Path
) -> None:
    v1 = write(
        tmp_path / "web-v1.yaml",
        {**WEB_CONFIG, "data": {"mode": "fast"}},
        WEB_CLAIM,
        WEB_SERVICE,
        WEB_DEPLOYMENT,
    )
    web = switchable("web", v1)
    sections = {
        "kube": kube_section(api),
        "jsorc": {"enabled": True, "keep_alive": ["web"], **FAST_JSORC},
    }
    plugins = {"kube": kube_plugin, "web": ServicesPlugin(web)}
    with runtime_of(tmp_path, sections, plugins) as runtime:
        jsorc = jsorc_of(runtime)
        wait_for("the Deployment created", lambda: api.get("Deployment", "web", NAMESPACE))
        assert api.get("PersistentVolumeClaim", "web-data", NAMESPACE) is not None
        api.set_pods("web", NAMESPACE)
        api.set_endpoints("web", NAMESPACE, ["10.0.0.7"], 80)
        web.available.set()
        wait_for("web running", runtime.hook.web.is_running)

        # A new release: the ConfigMap changed, the claim left the manifests. Then
        # the service's server goes away.
        web.kube_manifest = write(
            tmp_path / "web-v2.yaml",
            {**WEB_CONFIG, "data": {"mode": "safe"}},
            WEB_SERVICE,
            WEB_DEPLOYMENT,
        )
        api.clear_requests()
        web.available.clear()
        wait_for(
            "the ConfigMap patched",
            lambda: (
                (api.get("ConfigMap", "web-config", NAMESPACE) or {}).get("data")
                == {"mode": "safe"}
            ),
        )
        web.available.set()
        wait_for("web running again", runtime.hook.web.is_running)
        assert api.get("PersistentVolumeClaim", "web-data", NAMESPACE) is not None
        methods = {(w.method, w.path.rsplit("/", 2)[-2]) for w in api.writes()}
        assert methods == {("PATCH", "configmaps")}
        # JsOrc records its deploy step once the apply returned, which may be after
        # the stand-in shows the patch (and after the service is back).
        patched = wait_for(
            "the deploy step recorded",
            lambda: [
                s for s in jsorc.status.recent if s.action == "deploy" and "patch" in s.detail
            ],
        )
        assert "ConfigMap/web-config" in patched[-1].detail


def test_a_pod_that_never_gets_ready_times_out_and_backs_off(
    api: KubeStandIn, tmp_path: Path
) -> None:
    web = switchable("web", write(tmp_path / "web.yaml", WEB_SERVICE, WEB_DEPLOYMENT))
    fast = {**FAST_JSORC, "wait_timeout": 0.3, "backoff_base": 0.5, "backoff_cap": 1.0}
    sections = {
        "kube": kube_section(api),
        "jsorc": {"enabled": True, "keep_alive": ["web"], **fast},
    }
    with runtime_of(tmp_path, sections, {"kube": kube_plugin, "web": ServicesPlugin(web)}) as rt:
        jsorc = jsorc_of(rt)

        def timeouts() -> list[Step] | None:
            found = [s for s in steps_of(jsorc.status, "web") if s.action == "wait"]
            return found if len(found) >= 2 else None

        first, second = wait_for("two timed-out waits", timeouts)[:2]
        assert first.outcome == "failed" and "no pod Running and Ready (Pending)" in first.detail
        assert "Endpoints have no address" in first.detail
        # The second attempt came after the backoff, not at the next pass.
        assert second.at - first.at >= 0.5
        # Never handed to the supervisor as deployed (a first pass before kube ran may
        # have left it to the supervisor's own backoff).
        handed = [
            s for s in steps_of(jsorc.status, "web") if (s.action, s.outcome) == ("restart", "ok")
        ]
        assert not handed


# -- without kube: one restart path ------------------------------------------------------------


def test_without_manifests_a_failing_service_is_restarted_by_the_supervisor_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky, doomed = switchable("flaky"), switchable("doomed")
    sections = {"jsorc": {"enabled": True, "keep_alive": ["flaky", "doomed"], **FAST_JSORC}}
    plugins = {"apps": ServicesPlugin(flaky, doomed)}
    caplog.set_level(logging.INFO)
    with runtime_of(tmp_path, sections, plugins, supervisor={"give_up_after": 3}) as runtime:
        jsorc = jsorc_of(runtime)
        supervisor = runtime.supervisor
        wait_for("flaky retried with backoff", lambda: len(flaky.runs) >= 2)
        flaky.available.set()
        wait_for("flaky running", runtime.hook.flaky.is_running)
        # Counted by the supervisor just after the service runs again.
        wait_for("the restart counted", lambda: supervisor.state("flaky").restarts == 1)

        wait_for("the supervisor giving up on doomed", lambda: supervisor.state("doomed").gave_up)
        passes = jsorc.status.passes
        jsorc.orchestrator.wait_for_pass(passes + 3, WAIT)
        assert len(doomed.runs) == 1 + 3  # its start, then give_up_after attempts: no more
        assert runtime.hook.doomed.has_failed()
        last = jsorc.status.services["doomed"]
        assert (last.action, last.outcome) == ("restart", "failed")
        assert "gave up after 3 failed restarts" in last.detail
        told = [s for s in steps_of(jsorc.status, "doomed") if s.action == "restart"]
        assert all(s.action != "reset" for s in jsorc.status.recent)  # jsorc reset nothing
        # Told what the supervisor does: still trying, or (a later pass) given up.
        assert told and all("supervisor" in s.detail for s in told)
        giving_up = [r for r in caplog.records if "giving up" in r.getMessage()]
        assert len(giving_up) == 1  # once
        assert [r for r in caplog.records if "jsorc: doomed" in r.getMessage()]


def test_with_no_supervisor_jsorc_resets_with_backoff_and_gives_up(tmp_path: Path) -> None:
    flaky, doomed = switchable("flaky"), switchable("doomed")
    sections = {
        "jsorc": {
            "enabled": True,
            "keep_alive": ["flaky", "doomed"],
            **FAST_JSORC,
            "backoff_base": 0.1,
            "backoff_cap": 10,
            "give_up_after": 3,
        }
    }
    plugins = {"apps": ServicesPlugin(flaky, doomed)}
    with runtime_of(tmp_path, sections, plugins, supervisor={"enabled": False}) as runtime:
        jsorc = jsorc_of(runtime)
        wait_for("a first reset of flaky", lambda: len(flaky.runs) >= 2)
        flaky.available.set()
        wait_for("flaky reset by jsorc", runtime.hook.flaky.is_running)
        last = jsorc.status.services["flaky"]
        assert (last.action, last.outcome) == ("reset", "ok")

        wait_for(
            "jsorc giving up on doomed",
            lambda: "gave up" in getattr(jsorc.status.services.get("doomed"), "detail", ""),
        )
        jsorc.orchestrator.wait_for_pass(jsorc.status.passes + 3, WAIT)
        assert len(doomed.runs) == 1 + 3
        first_gap, second_gap = (b - a for a, b in itertools.pairwise(doomed.runs[1:]))
        assert first_gap >= 0.1 and second_gap >= 0.2  # the backoff doubles


def test_only_the_leader_does_the_duty(tmp_path: Path) -> None:
    leader_app, standby_app = switchable("leaderapp"), switchable("standbyapp")
    off = {"enabled": False}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        runtime_of(
            tmp_path / "a",
            {"jsorc": {"enabled": True, "keep_alive": ["leaderapp"], **FAST_JSORC}},
            {"apps": ServicesPlugin(leader_app)},
            supervisor=off,
        ) as first,
        runtime_of(
            tmp_path / "b",
            {"jsorc": {"enabled": True, "keep_alive": ["standbyapp"], **FAST_JSORC}},
            {"apps": ServicesPlugin(standby_app)},
            supervisor=off,
        ) as second,
    ):
        jsorc_of(second).leader = lambda: False
        standby = jsorc_of(second)
        passes = standby.status.passes
        standby.orchestrator.wait_for_pass(passes + 3, WAIT)
        wait_for("the leader acting", lambda: len(leader_app.runs) >= 2)
        assert standby.status.role == "standby"
        assert len(standby_app.runs) == 1  # its own start only: nothing from jsorc
        assert jsorc_of(first).status.role == "leader"
        sample = standby.metrics.registry.get_sample_value(
            "jsorc_passes_total", {"role": "standby"}
        )
        assert sample is not None and sample >= 3


def test_config_refresh_resets_jsorc_in_place_keeping_its_leader_check(tmp_path: Path) -> None:
    sections = {"jsorc": {"enabled": True, "keep_alive": [], **FAST_JSORC}}
    with runtime_of(tmp_path, sections, {}) as runtime:
        jsorc = jsorc_of(runtime)
        jsorc.leader = lambda: False
        api = ConfigApi(runtime.hook)
        api.config_set("jsorc", {"interval": 0.3})
        refreshed = api.config_refresh("jsorc")
        assert refreshed is jsorc and jsorc.is_running()
        assert jsorc.options.interval == 0.3
        assert jsorc.is_leader() is False
        assert runtime.hook.jsorc is jsorc
        assert jsorc.daemon_names() == ["jsorc"]


def test_jsorc_status_command_shows_the_last_pass(tmp_path: Path, cli: Cli) -> None:
    config = tmp_path / "jsorc.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "jsorc": {"enabled": True, "keep_alive": ["mail", "nothere"], "interval": 0.1},
                # One config store for this process and the command's.
                "db": {"data_dir": str(tmp_path / "data")},
            }
        )
    )
    runtime = Runtime(config_file=config, environ={}, meta=MetaService.isolated())
    runtime.start(strict=False)
    try:
        jsorc = jsorc_of(runtime)
        jsorc.orchestrator.wait_for_pass(jsorc.status.passes + 1, WAIT)
    finally:
        runtime.stop()
    done = cli.run("jsorc", "status", "--config", str(config))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "keep alive: mail, nothere" in out
    assert "last pass:" in out and "(leader" in out
    assert "disabled" in out  # mail is off by default
    assert "not a service of this runtime" in out


def stored_status(runtime: Runtime) -> Status | None:
    """The jsorc report as the SQL store holds it now (what another process reads)."""
    engine = runtime.meta.get_service("db").app

    async def read() -> str | None:
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT value FROM jaseci_like_globs WHERE name = :name"),
                {"name": STATUS_GLOB},
            )
            value = found.scalar_one_or_none()
            return str(value) if value is not None else None

    stored = runtime.meta.loop.run(read())
    return Status.from_json(stored) if stored else None


def test_two_runtimes_on_one_store_one_leads_and_the_saved_report_is_its(
    tmp_path: Path,
) -> None:
    config = tmp_path / "jsorc.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "jsorc": {"enabled": True, "keep_alive": ["mail"], "interval": 0.1},
                "db": {"data_dir": str(tmp_path / "data")},  # the store both share
                "api": {"enabled": False},
            }
        )
    )
    runtimes = [
        Runtime(config_file=config, environ={}, meta=MetaService.isolated()) for _ in range(2)
    ]
    try:
        for runtime in runtimes:
            runtime.start(strict=False)
        jsorcs = [jsorc_of(r) for r in runtimes]
        for jsorc in jsorcs:
            assert jsorc.orchestrator.wait_for_pass(jsorc.status.passes + 2, WAIT)
        roles = sorted(j.status.role or "" for j in jsorcs)
        assert roles == ["leader", "standby"]  # the real lease: exactly one leads
        standby = next(j for j in jsorcs if j.status.role == "standby")
        for _ in range(5):  # right after each of the standby's passes
            assert standby.orchestrator.wait_for_pass(standby.status.passes, WAIT)
            saved = stored_status(runtimes[0])
            assert saved is not None and saved.role == "leader", saved
    finally:
        for runtime in runtimes:
            runtime.stop(timeout=10.0)
