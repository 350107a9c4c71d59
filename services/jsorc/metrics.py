"""JsOrc's Prometheus metrics, in a registry of its own (``JsOrcService.metrics.registry``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class JsOrcMetrics:
    """``jsorc_passes_total``, ``jsorc_actions_total``, ``jsorc_wait_seconds``,
    ``jsorc_keep_alive_running``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.passes = Counter(
            "jsorc_passes",
            "Passes over the keep-alive list, by role.",
            ("role",),
            registry=self.registry,
        )
        self.actions = Counter(
            "jsorc_actions",
            "What jsorc did for a keep-alive service, by action and outcome.",
            ("service", "action", "outcome"),
            registry=self.registry,
        )
        self.wait_seconds = Histogram(
            "jsorc_wait_seconds",
            "Time a deployed service took to have its pods ready and its endpoints.",
            ("service",),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.running = Gauge(
            "jsorc_keep_alive_running",
            "1 when the keep-alive service was RUNNING at the last pass.",
            ("service",),
            registry=self.registry,
        )
