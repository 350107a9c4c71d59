"""Prometheus metrics of the HTTP layer, and the ``/metrics`` text of every registry.

Requests are counted by method, route template (``/v1/groups/{group}/dotfiles``,
never the raw path, so the label set stays small) and status, and timed by
route. The api's key and task-owner operations are counted in the same registry
by :class:`OperationMetrics` (``api_operations_total``...). Every service of the
runtime is reported at each scrape by :func:`service_registry` (state, health,
restarts, whether its supervisor gave up, and whether this instance leads).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from jaseci_like import ServiceState

#: The exposition format's content type.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Label of a request that matched no route (404s of any path count once).
UNMATCHED = "unmatched"


class HttpMetrics:
    """``api_http_requests_total``, ``api_http_request_seconds``, ``api_http_in_flight``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "api_http_requests",
            "HTTP requests answered, by method, route and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.seconds = Histogram(
            "api_http_request_seconds",
            "Time to answer, by route.",
            ("route",),
            registry=registry,
            buckets=_BUCKETS,
        )
        self.in_flight = Gauge(
            "api_http_in_flight", "Requests being answered now.", registry=registry
        )
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._timers: dict[str, Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.requests.labels(method, route, str(status))
        counter.inc()
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = self.seconds.labels(route)
        timer.observe(seconds)


def exposition(registries: Iterable[CollectorRegistry]) -> bytes:
    """The text format of every registry, one after the other (their names differ)."""
    return b"".join(generate_latest(registry) for registry in registries)


@dataclass(frozen=True)
class ServiceSample:
    """One service as ``/metrics`` shows it, read at the scrape (nothing secret)."""

    name: str
    enabled: bool
    state: str
    #: RUNNING and its health check passed (False when not running).
    healthy: bool
    #: Times the supervisor brought it back to RUNNING.
    restarts: int
    gave_up: bool


class _Services(Collector):
    """The families of one scrape's samples; states as a state set (one series per
    state, 1 for the current one), so ``== 1`` selects and alerts need no decoding."""

    def __init__(self, samples: Sequence[ServiceSample], leader: bool | None) -> None:
        self.samples = samples
        self.leader = leader

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "jaseci_like_service_state",
            "1 for the service's current lifecycle state, 0 for the others.",
            labels=("service", "state"),
        )
        enabled = GaugeMetricFamily(
            "jaseci_like_service_enabled", "1 if the service is enabled.", labels=("service",)
        )
        healthy = GaugeMetricFamily(
            "jaseci_like_service_healthy",
            "1 if the service is RUNNING and its health check passed at this scrape.",
            labels=("service",),
        )
        restarts = CounterMetricFamily(
            "jaseci_like_service_restarts",
            "Times the supervisor brought the service back to RUNNING.",
            labels=("service",),
        )
        gave_up = GaugeMetricFamily(
            "jaseci_like_service_gave_up",
            "1 if the supervisor stopped restarting the service.",
            labels=("service",),
        )
        for sample in self.samples:
            for name in ServiceState.__members__:
                state.add_metric([sample.name, name], 1.0 if name == sample.state else 0.0)
            enabled.add_metric([sample.name], float(sample.enabled))
            healthy.add_metric([sample.name], float(sample.healthy))
            restarts.add_metric([sample.name], float(sample.restarts))
            gave_up.add_metric([sample.name], float(sample.gave_up))
        yield from (state, enabled, healthy, restarts, gave_up)
        if self.leader is not None:
            yield GaugeMetricFamily(
                "jaseci_like_leader",
                "1 if this instance holds the lease for singleton duties (beat, JsOrc).",
                value=float(self.leader),
            )


def service_registry(samples: Sequence[ServiceSample], leader: bool | None) -> CollectorRegistry:
    """A registry of one scrape: ``samples``, and the leader gauge unless ``leader``
    is None (no lease in this runtime)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Services(samples, leader))
    return registry
