"""PromonService: a Prometheus HTTP API client as ``app``, with the Jaseci helpers.

The helpers read what a Kubernetes monitoring stack exports: node-exporter's
``node_*`` series per node (the ``instance`` label) and cAdvisor's
``container_*`` series per pod::

    promon = meta.get_service("promon", hook)
    promon.cpu.per_node()              # {"10.0.0.5:9100": 0.42}  cores in use
    promon.memory.per_pod("default")   # {"redis-0": 7340032.0}   bytes
    promon.pods("default")             # ["redis-0", ...]
    promon.info("default")             # server build, then usage per node and pod
    promon.app.query('up{job="jaseci-like"}')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from jaseci_like_configs import defaults
from jaseci_like_services.promon.client import PrometheusClient, Sample
from jaseci_like_services.promon.config import PromonConfig
from jaseci_like_services.promon.errors import PromonError, PromonUnavailable

from jaseci_like import CommonService, ConfigError, MemoryHook

#: cAdvisor also reports a pod's sandbox ("POD") and the pod as a whole (no
#: container label); per-pod sums over containers leave both out.
_CONTAINERS = 'container!="",container!="POD"'
#: Filesystems that are not disks.
_DISKS = 'fstype!~"tmpfs|overlay|squashfs|ramfs"'


def _quoted(value: str) -> str:
    """``value`` as a PromQL string literal (JSON escapes are PromQL escapes)."""
    return json.dumps(value)


def _by(samples: list[Sample], label: str) -> dict[str, float]:
    return {s.label(label): s.value for s in samples}


@dataclass(frozen=True)
class Traffic:
    """Bytes per second in and out."""

    receive: float
    transmit: float


class _Helper:
    """One resource's queries, per node and per pod."""

    def __init__(self, promon: PromonService) -> None:
        self.promon = promon

    @property
    def window(self) -> str:
        return self.promon.options.window

    def _ns(self, namespace: str | None) -> str:
        return self.promon.namespace_literal(namespace)

    def _query(self, promql: str, label: str) -> dict[str, float]:
        return _by(self.promon.client.query(promql), label)


class Cpu(_Helper):
    def per_node(self) -> dict[str, float]:
        """CPU cores in use (not idle) per node, averaged over the window."""
        return self._query(
            f'sum by (instance) (rate(node_cpu_seconds_total{{mode!="idle"}}[{self.window}]))',
            "instance",
        )

    def per_pod(self, namespace: str | None = None) -> dict[str, float]:
        """CPU cores used per pod of ``namespace``, averaged over the window."""
        selector = f"namespace={self._ns(namespace)},{_CONTAINERS}"
        return self._query(
            f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{selector}}}[{self.window}]))",
            "pod",
        )


class Memory(_Helper):
    def per_node(self) -> dict[str, float]:
        """Bytes of memory in use per node (total minus available)."""
        return self._query(
            "sum by (instance) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)",
            "instance",
        )

    def per_pod(self, namespace: str | None = None) -> dict[str, float]:
        """Working-set bytes per pod of ``namespace`` (what the OOM killer counts)."""
        selector = f"namespace={self._ns(namespace)},{_CONTAINERS}"
        return self._query(
            f"sum by (pod) (container_memory_working_set_bytes{{{selector}}})", "pod"
        )


class Network(_Helper):
    def per_node(self) -> dict[str, Traffic]:
        """Bytes per second received and sent per node (loopback left out)."""
        return self._traffic("node_network_{}_bytes_total", 'device!="lo"', "instance")

    def per_pod(self, namespace: str | None = None) -> dict[str, Traffic]:
        """Bytes per second received and sent per pod of ``namespace``."""
        return self._traffic(
            "container_network_{}_bytes_total", f"namespace={self._ns(namespace)}", "pod"
        )

    def _traffic(self, metric: str, selector: str, label: str) -> dict[str, Traffic]:
        ways = {
            way: self._query(
                f"sum by ({label}) (rate({metric.format(way)}{{{selector}}}[{self.window}]))",
                label,
            )
            for way in ("receive", "transmit")
        }
        names = sorted(set(ways["receive"]) | set(ways["transmit"]))
        return {
            n: Traffic(ways["receive"].get(n, 0.0), ways["transmit"].get(n, 0.0)) for n in names
        }


class Disk(_Helper):
    def per_node(self) -> dict[str, float]:
        """Bytes used on the disks of each node."""
        return self._query(
            f"sum by (instance) (node_filesystem_size_bytes{{{_DISKS}}} "
            f"- node_filesystem_avail_bytes{{{_DISKS}}})",
            "instance",
        )

    def per_pod(self, namespace: str | None = None) -> dict[str, float]:
        """Bytes each pod of ``namespace`` writes to its container filesystems."""
        selector = f"namespace={self._ns(namespace)},{_CONTAINERS}"
        return self._query(f"sum by (pod) (container_fs_usage_bytes{{{selector}}})", "pod")


class PromonService(CommonService):
    """``app`` is a :class:`PrometheusClient`; health is the server's ``/-/ready``."""

    name = "promon"
    config_schema = PromonConfig
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: PromonConfig | None
    default_config: ClassVar[dict[str, Any]] = defaults("promon")
    start_blocks = True

    def __init__(self, hook: MemoryHook | None = None) -> None:
        super().__init__(hook)
        self.cpu = Cpu(self)
        self.memory = Memory(self)
        self.network = Network(self)
        self.disk = Disk(self)

    @property
    def options(self) -> PromonConfig:
        if not isinstance(self.settings, PromonConfig):
            raise (
                self.error
                if isinstance(self.error, ConfigError)
                else ConfigError("promon: the configuration was not built")
            )
        return self.settings

    @property
    def client(self) -> PrometheusClient:
        """The client while RUNNING; a :class:`PromonError` saying why otherwise."""
        app = self.app
        if not isinstance(app, PrometheusClient):
            why = "disabled" if not self.enabled else self.state.name
            raise PromonError(f"the promon service is not running ({why})")
        return app

    def namespace_literal(self, namespace: str | None) -> str:
        """``namespace`` (default: the configured one) as a PromQL string literal."""
        return _quoted(namespace if namespace is not None else self.options.namespace)

    # -- the Jaseci helpers -------------------------------------------------------------
    def pods(self, namespace: str | None = None) -> list[str]:
        """Names of the pods of ``namespace`` that Prometheus knows of (from
        kube-state-metrics' ``kube_pod_info``, or cAdvisor's containers), sorted."""
        ns = self.namespace_literal(namespace)
        containers = f"container_memory_working_set_bytes{{namespace={ns},{_CONTAINERS}}}"
        found = self.client.query(
            f"count by (pod) (kube_pod_info{{namespace={ns}}}) or count by (pod) ({containers})"
        )
        return sorted({s.label("pod") for s in found if s.label("pod")})

    def info(self, namespace: str | None = None) -> dict[str, Any]:
        """The server's build, and CPU (cores), memory and disk (bytes) and network
        (bytes/s) per node and per pod of ``namespace``."""
        nodes_net = self.network.per_node()
        pods_net = self.network.per_pod(namespace)
        return {
            "server": self.client.build_info(),
            "nodes": _merge(
                cpu=self.cpu.per_node(),
                memory=self.memory.per_node(),
                disk=self.disk.per_node(),
                network_receive={k: v.receive for k, v in nodes_net.items()},
                network_transmit={k: v.transmit for k, v in nodes_net.items()},
            ),
            "pods": _merge(
                cpu=self.cpu.per_pod(namespace),
                memory=self.memory.per_pod(namespace),
                disk=self.disk.per_pod(namespace),
                network_receive={k: v.receive for k, v in pods_net.items()},
                network_transmit={k: v.transmit for k, v in pods_net.items()},
            ),
        }

    # -- lifecycle -----------------------------------------------------------------------
    def run(self, hook: MemoryHook | None = None) -> None:
        options = self.options
        client = PrometheusClient(
            options.url,
            timeout=options.timeout,
            token=options.token.get_secret_value() if options.token is not None else None,
            verify=options.verify_ssl,
        )
        try:
            if not client.ready(options.health_timeout):
                raise PromonUnavailable(f"Prometheus at {client.where} is not ready yet")
        except BaseException:
            client.close()
            raise
        self.app = client

    def teardown(self) -> None:
        self.client.close()

    def health(self) -> bool:
        return self.client.ready(self.options.health_timeout)

    def health_timeout(self) -> float:
        # The request's own timeout decides; this bound only catches a hung thread.
        return self.options.health_timeout + 1.0


def _merge(**columns: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{name: {column: value}}`` from ``{column: {name: value}}``."""
    merged: dict[str, dict[str, float]] = {}
    for column, values in columns.items():
        for name, value in values.items():
            merged.setdefault(name, {})[column] = value
    return merged
