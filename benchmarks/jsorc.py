"""JsOrc and promon figures.

``jsorc.heal_s``: a keep-alive redis whose deployment and server vanish, healed
through the kube stand-in (``tests/kube_standin.py``) and a real redis-server.
``promon.query_ms``: one promon helper query against a real Prometheus
(``tests/prometheus_server.py``), against the same query as a raw HTTP GET.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from benchmarks.registry import Context, Target, bench
from jaseci_like import MetaService, Runtime

#: Seconds any single wait may take before the figure is called broken.
WAIT = 60.0
TOKEN = "bench-kube-token"
NAMESPACE = "jl"
#: JsOrc's pass interval in the heal figure (its target is interval + 1 s).
INTERVAL = 1.0


def _until(what: str, probe: Callable[[], object], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)  # polling state of other threads and processes


@bench("jsorc.heal_s", unit="s", better="lower", target=Target("ratio", "<=", 1.0))
def heal_s(ctx: Context) -> tuple[float, float]:
    """Median seconds (10 cycles) from a keep-alive redis losing its Deployment,
    Service and server to the redis service RUNNING and healthy again, healed by
    JsOrc through the kube stand-in: JsOrc sees it down at its next pass, creates
    the objects, the test (the kubelet) moves the new pod to Running and Ready,
    points the Endpoints at a redis-server it starts at once, and the supervisor
    restarts redis when JsOrc asks. Baseline: the target, ``interval`` + 1 s
    (interval 1 s; the supervisor checks every 100 ms)."""
    from jaseci_like_services.jsorc import plugin as jsorc_plugin
    from jaseci_like_services.kube import plugin as kube_plugin
    from jaseci_like_services.redis import plugin as redis_plugin

    from tests.kube_standin import KubeStandIn
    from tests.servers import LOOPBACK, RedisServer, free_port

    cycles = 3 if ctx.quick else 10
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="jl-bench-jsorc-"))
    heals: list[float] = []
    with KubeStandIn(token=TOKEN) as api, RedisServer(port=port) as redis:
        config = {
            "runtime": {"supervisor": {"interval": 0.1, "backoff_base": 0.1}},
            "kube": {
                "enabled": True,
                "host": api.url,
                "token": TOKEN,
                "manage": [],
                "namespace": NAMESPACE,
            },
            "redis": {"enabled": True, "port": port, "socket_connect_timeout": 0.2},
            "jsorc": {
                "enabled": True,
                "quiet": True,
                "keep_alive": ["redis"],
                "interval": INTERVAL,
                "wait_poll": 0.02,
                "backoff_base": 0.1,
                "backoff_cap": 0.2,
            },
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        runtime = Runtime(
            config_file=folder / "config.yaml",
            environ={},
            meta=MetaService.isolated(),
            discover=False,
            plugins={"kube": kube_plugin, "redis": redis_plugin, "jsorc": jsorc_plugin},
        )
        runtime.start(strict=False)
        try:
            service = runtime.hook.redis
            _until("redis running", service.is_running)
            paths = {
                "Deployment": "/apis/apps/v1/namespaces/jl/deployments/jaseci-like-redis",
                "Service": "/api/v1/namespaces/jl/services/jaseci-like-redis",
            }
            for _ in range(cycles):
                stop = threading.Event()

                def kubelet(stop: threading.Event = stop) -> None:
                    _until(
                        "the Deployment created again",
                        lambda: (
                            stop.is_set()
                            or api.get("Deployment", "jaseci-like-redis", NAMESPACE) is not None
                        ),
                    )
                    if stop.is_set():
                        return
                    redis.start()
                    api.set_pods("jaseci-like-redis", NAMESPACE)
                    api.set_endpoints("jaseci-like-redis", NAMESPACE, [LOOPBACK], port)

                for kind, path in paths.items():  # none before the first heal
                    if api.get(kind, "jaseci-like-redis", NAMESPACE) is not None:
                        api.handle("DELETE", path, {}, None, None)
                redis.kill()
                began = time.monotonic()
                watcher = threading.Thread(target=kubelet, daemon=True)
                watcher.start()
                _until("redis unhealthy", lambda: not service.is_running())
                _until("redis running again", lambda: service.is_running() and service.health())
                heals.append(time.monotonic() - began)
                stop.set()
                watcher.join(WAIT)
        finally:
            runtime.stop(timeout=10.0)
    ctx.note(
        f"median {statistics.median(heals):.2f}s, max {max(heals):.2f}s over {len(heals)} "
        f"heals (interval {INTERVAL:g}s; target under {INTERVAL + 1:g}s)"
    )
    return statistics.median(heals), INTERVAL + 1.0


@bench("promon.query_ms", unit="ms", better="lower", target=Target("ratio", "<=", 1.5))
def query_ms(ctx: Context) -> tuple[float, float]:
    """Median ms of ``promon.memory.per_node()`` (one instant query, answer parsed
    into ``{node: bytes}``) against a real Prometheus scraping itself, vs the same
    PromQL as a raw ``httpx`` GET whose JSON is decoded. Alternating calls."""
    import httpx
    from jaseci_like_services.promon import PromonService

    from tests.prometheus_server import PrometheusServer
    from tests.servers import LOOPBACK, free_port

    rounds = 50 if ctx.quick else 400
    port = free_port()
    promql = "sum by (instance) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)"
    with PrometheusServer({"prometheus": [f"{LOOPBACK}:{port}"]}, port=port) as server:
        meta = MetaService.isolated()
        meta.add_service_builder("promon", PromonService)
        hook = meta.build_hook(start=False)
        hook.save_glob("PROMON_CONFIG", {"enabled": True, "url": server.url})
        promon = meta.get_service("promon", hook)
        assert isinstance(promon, PromonService) and promon.is_running(), promon.error
        raw = httpx.Client(base_url=server.url, timeout=5.0)
        ours: list[float] = []
        base: list[float] = []
        try:
            for _ in range(rounds):
                began = time.perf_counter()
                promon.memory.per_node()
                ours.append(time.perf_counter() - began)
                began = time.perf_counter()
                raw.get("/api/v1/query", params={"query": promql}).json()
                base.append(time.perf_counter() - began)
        finally:
            raw.close()
            meta.clear()
    return statistics.median(ours) * 1000, statistics.median(base) * 1000
