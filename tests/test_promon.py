"""The promon service against a real Prometheus server (``tests/prometheus_server.py``).

The server scrapes two targets every second: the API of a runtime the test
starts (its ``/metrics``), and an exporter in this process that serves what a
cluster's node-exporter and cAdvisor would (``node_*`` and ``container_*``
series with known values and rates), so each helper's PromQL is checked by the
real query engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest
from jaseci_like_services.promon import (
    PromonQueryError,
    PromonService,
    PromonUnavailable,
    Traffic,
)
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jaseci_like import ConfigApi, MetaService, Runtime, ServiceState
from tests.api_support import ApiRig, api_rig, settings_env
from tests.prometheus_server import PrometheusServer
from tests.servers import LOOPBACK, ServerMissing, free_port

T = TypeVar("T")
WAIT = 60.0
NAMESPACE = "jl"
GIB = 1 << 30
SECRET = "prom-pass-8c1f27e0"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT) -> T:
    """``probe()`` until it gives something other than None (or False)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except Exception as exc:  # not there yet: asked again until the deadline
            last, found = exc, None
        if found is not None and found is not False:
            return found
        time.sleep(0.1)  # polling a remote condition: there is no event to wait on
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


class FakeCluster(Collector):
    """node-exporter's and cAdvisor's series: counters grow at fixed rates per second."""

    def __init__(self) -> None:
        self.began = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        t = time.monotonic() - self.began
        cpu = CounterMetricFamily("node_cpu_seconds", "", labels=["cpu", "mode"])
        cpu.add_metric(["0", "user"], 0.5 * t)
        cpu.add_metric(["0", "idle"], 3.0 * t)
        yield cpu
        yield GaugeMetricFamily("node_memory_MemTotal_bytes", "", value=8 * GIB)
        yield GaugeMetricFamily("node_memory_MemAvailable_bytes", "", value=6 * GIB)
        for way, rate in (("receive", 1000.0), ("transmit", 500.0)):
            net = CounterMetricFamily(f"node_network_{way}_bytes", "", labels=["device"])
            net.add_metric(["eth0"], rate * t)
            net.add_metric(["lo"], 99999.0 * t)  # loopback: not counted
            yield net
        labels = ["mountpoint", "fstype"]
        size = GaugeMetricFamily("node_filesystem_size_bytes", "", labels=labels)
        avail = GaugeMetricFamily("node_filesystem_avail_bytes", "", labels=labels)
        size.add_metric(["/", "ext4"], 100e9)
        avail.add_metric(["/", "ext4"], 60e9)
        size.add_metric(["/run", "tmpfs"], 5e9)  # not a disk
        avail.add_metric(["/run", "tmpfs"], 1e9)
        yield size
        yield avail
        pod = ["namespace", "pod", "container"]
        usage = CounterMetricFamily("container_cpu_usage_seconds", "", labels=pod)
        usage.add_metric([NAMESPACE, "redis-0", "redis"], 0.25 * t)
        usage.add_metric([NAMESPACE, "redis-0", "POD"], 5.0 * t)  # the sandbox: left out
        usage.add_metric(["other", "web-1", "web"], 2.0 * t)  # another namespace
        yield usage
        memory = GaugeMetricFamily("container_memory_working_set_bytes", "", labels=pod)
        memory.add_metric([NAMESPACE, "redis-0", "redis"], 64 * (1 << 20))
        memory.add_metric(["other", "web-1", "web"], 1 << 30)
        yield memory
        disk = GaugeMetricFamily("container_fs_usage_bytes", "", labels=pod)
        disk.add_metric([NAMESPACE, "redis-0", "redis"], 4096)
        yield disk
        for way, rate in (("receive", 200.0), ("transmit", 100.0)):
            net = CounterMetricFamily(
                f"container_network_{way}_bytes", "", labels=["namespace", "pod"]
            )
            net.add_metric([NAMESPACE, "redis-0"], rate * t)
            yield net
        info = GaugeMetricFamily("kube_pod_info", "", labels=["namespace", "pod"])
        info.add_metric([NAMESPACE, "redis-0"], 1)
        info.add_metric([NAMESPACE, "pending-1"], 1)  # no container yet: known by name only
        yield info


@dataclass
class Stack:
    prometheus: PrometheusServer
    rig: ApiRig
    exporter: str

    @property
    def runtime(self) -> Runtime:
        return self.rig.runtime

    @property
    def promon(self) -> PromonService:
        service = self.runtime.hook.promon
        assert isinstance(service, PromonService)
        return service


def _missing(exc: ServerMissing) -> NoReturn:
    pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prometheus scraping a runtime's API and the fake exporter; promon enabled."""
    registry = CollectorRegistry()
    registry.register(FakeCluster())
    exporter_port = free_port()
    httpd, thread = start_http_server(exporter_port, LOOPBACK, registry)
    api_port = free_port()
    exporter = f"{LOOPBACK}:{exporter_port}"
    try:
        server = PrometheusServer(
            {"jaseci-like": [f"{LOOPBACK}:{api_port}"], "exporter": [exporter]}
        )
    except ServerMissing as exc:
        httpd.shutdown()
        _missing(exc)
    try:
        server.start()
        settings = {
            "api.port": str(api_port),
            "promon.enabled": "true",
            "promon.url": server.url,
            "promon.window": "5s",
            "promon.namespace": NAMESPACE,
            "runtime.supervisor.interval": "0.2",
        }
        with api_rig(tmp_path_factory.mktemp("promon"), settings=settings) as rig:
            yield Stack(server, rig, exporter)
    finally:
        server.close()
        httpd.shutdown()
        thread.join(5)


def test_promon_is_on_the_hook_and_running(stack: Stack) -> None:
    promon = stack.promon
    assert promon.is_running(), promon.error
    assert promon.check_health() is True
    assert promon.app.build_info()["version"]


def test_up_and_our_own_gauges_read_back_through_promon(stack: Stack) -> None:
    client = stack.promon.client

    def up() -> float | None:
        found = client.query('up{job="jaseci-like"}')
        return found[0].value if found and found[0].value == 1.0 else None

    assert wait_for("the runtime scraped", up) == 1.0
    # The api's own gauge: a scrape is itself a request in flight when it is measured.
    in_flight = wait_for(
        "api_http_in_flight",
        lambda: client.query('api_http_in_flight{job="jaseci-like"}') or None,
    )
    assert in_flight[0].value >= 1.0
    # A request is counted once answered: from the second scrape on.
    scrapes = wait_for(
        "the scrapes counted",
        lambda: client.query('api_http_requests_total{job="jaseci-like",route="/metrics"}') or None,
    )
    assert scrapes[0].value >= 1.0
    assert scrapes[0].label("instance") == f"{LOOPBACK}:{stack.rig.api.port}"


def _rate_ready(stack: Stack) -> bool:
    """True once the exporter has been scraped over more than the whole rate window
    (5 s, scraped every second): a rate over a window the series only partly covers
    is extrapolated from too few samples."""
    found = stack.promon.client.query("count_over_time(node_memory_MemTotal_bytes[8s])")
    return bool(found) and found[0].value >= 7


def test_node_helpers_read_node_exporter_series(stack: Stack) -> None:
    promon = stack.promon
    wait_for("the rate window covered", lambda: _rate_ready(stack))
    node = stack.exporter
    assert promon.cpu.per_node()[node] == pytest.approx(0.5, rel=0.2)
    assert promon.memory.per_node() == {node: 2 * GIB}
    assert promon.disk.per_node() == {node: 40e9}
    traffic = promon.network.per_node()[node]
    assert isinstance(traffic, Traffic)
    assert traffic.receive == pytest.approx(1000.0, rel=0.2)
    assert traffic.transmit == pytest.approx(500.0, rel=0.2)


def test_pod_helpers_read_cadvisor_series_of_one_namespace(stack: Stack) -> None:
    promon = stack.promon
    wait_for("the rate window covered", lambda: _rate_ready(stack))
    cpu = promon.cpu.per_pod()
    assert set(cpu) == {"redis-0"}  # the POD sandbox and the other namespace left out
    assert cpu["redis-0"] == pytest.approx(0.25, rel=0.2)
    assert promon.memory.per_pod() == {"redis-0": 64 * (1 << 20)}
    assert promon.memory.per_pod("other") == {"web-1": 1 << 30}
    assert promon.disk.per_pod(NAMESPACE) == {"redis-0": 4096}
    assert promon.network.per_pod()["redis-0"].receive == pytest.approx(200.0, rel=0.2)
    assert promon.pods() == ["pending-1", "redis-0"]
    assert promon.pods("other") == ["web-1"]
    assert promon.pods("nowhere") == []
    info = promon.info()
    assert info["server"]["version"]
    assert info["pods"]["redis-0"]["memory"] == 64 * (1 << 20)
    assert info["nodes"][stack.exporter]["disk"] == 40e9


def test_a_namespace_cannot_inject_promql(stack: Stack) -> None:
    # Quoted as a string literal: the quote and brace stay part of the value.
    assert stack.promon.memory.per_pod('jl"} or vector(1) #') == {}


def test_a_refused_query_is_a_typed_error(stack: Stack) -> None:
    with pytest.raises(PromonQueryError) as caught:
        stack.promon.client.query("sum(")
    assert caught.value.code == "promon_query_refused"
    assert "bad_data" in str(caught.value)


def test_an_unreachable_server_fails_the_start_without_showing_its_password(
    tmp_path: Path,
) -> None:
    url = f"http://watcher:{SECRET}@{LOOPBACK}:{free_port()}"
    environ = settings_env(
        {
            "promon.enabled": "true",
            "promon.url": url,
            "db.data_dir": str(tmp_path),
            "runtime.supervisor.enabled": "false",  # the failed start stays as it is
        }
    )
    environ["JASECI_LIKE__PLUGINS__ALLOW"] = "db,promon"
    runtime = Runtime(meta=MetaService.isolated(), environ=environ)
    try:
        runtime.start(strict=False)
        promon = runtime.hook.promon
        assert promon.state is ServiceState.FAILED
        assert isinstance(promon.error, PromonUnavailable)
        assert promon.error.code == "promon_unavailable"
        shown = " ".join(str(row) for row in runtime.status()) + str(promon.error)
        assert SECRET not in shown
        assert f"{LOOPBACK}:" in str(promon.error)  # it says where, without the password
    finally:
        runtime.stop()


def test_config_set_and_refresh_of_promon(stack: Stack) -> None:
    api = ConfigApi(stack.runtime.hook)
    api.config_set("promon", {"timeout": 7.5})
    try:
        after = api.config_refresh("promon")
        assert isinstance(after, PromonService)
        assert after.is_running() and after.options.timeout == 7.5
        assert stack.runtime.hook.promon is after
        assert after.app.http.timeout.read == 7.5  # the new client has the new timeout
    finally:
        api.config_set("promon", {"timeout": 5.0})
        api.config_refresh("promon")


def test_prometheus_down_fails_health_and_the_supervisor_restarts_promon(stack: Stack) -> None:
    supervisor = stack.runtime.supervisor
    restarts = supervisor.state("promon").restarts
    stack.prometheus.stop()

    def seen_down() -> bool:
        # Health (the server's readiness) failed, and the restart it caused failed too.
        last = supervisor.state("promon").last_error or ""
        return "cannot reach Prometheus" in last and stack.promon.has_failed()

    wait_for("the supervisor to see promon fail", seen_down)
    assert supervisor.state("promon").restarts == restarts
    stack.prometheus.start()
    wait_for(
        "promon restarted by the supervisor",
        lambda: supervisor.state("promon").restarts > restarts and stack.promon.is_running(),
    )
    assert stack.promon.check_health() is True
    assert stack.promon.client.query("vector(1)")[0].value == 1.0
