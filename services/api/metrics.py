"""Prometheus metrics of the HTTP layer, and the ``/metrics`` text of every registry.

Requests are counted by method, route template (``/v1/groups/{group}/dotfiles``,
never the raw path, so the label set stays small) and status, and timed by
route. The api's key and task-owner operations are counted in the same registry
by :class:`OperationMetrics` (``api_operations_total``...).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
