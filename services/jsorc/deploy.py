"""What one keep-alive service needs in the cluster: its manifests applied, then waited for.

Applying goes through the kube service's own pieces (render and check, plan,
the safe order), restricted to one service's manifests: what is missing is
created, what changed is patched, nothing is deleted (a service's objects that
left its manifests are the kube service's ``apply`` to delete; a claim never is).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jaseci_like_kubes import manifest as packaged_manifest
from jaseci_like_kubes import names as packaged_names
from jaseci_like_services.jsorc.errors import DeployTimeout
from jaseci_like_services.kube import Action, Desired, Key, KubeError, KubeService, Source
from jaseci_like_services.kube.manifests import render
from jaseci_like_services.kube.plan import compute

from jaseci_like import CommonService, MemoryHook
from jaseci_like.manifests import Manifests, load_manifests

WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})


def manifests_of(service: CommonService, hook: MemoryHook) -> tuple[str, Manifests] | None:
    """Where the manifests of ``service`` come from and the manifests: its own
    (``kube_manifest`` / ``build_kube``, read again), else the packaged
    ``kubes/<name>.yaml``; None when it has neither."""
    own = service.build_kube(hook)
    cls = type(service)
    if own:
        where = str(cls.kube_manifest) if cls.kube_manifest else f"service {cls.service_name()!r}"
        return where, own
    name = cls.service_name()
    if name in packaged_names():
        return f"kubes/{name}.yaml", load_manifests(packaged_manifest(name))
    return None


def _cluster_of(kube: KubeService) -> Any:
    cluster = kube.cluster
    if cluster is None or not kube.is_running():
        raise KubeError("the kube service is not running; nothing can be deployed")
    return cluster


def apply(
    kube: KubeService, where: str, manifests: Manifests, namespace: str | None
) -> tuple[list[Action], Readiness]:
    """Create the missing objects of ``manifests`` and patch the changed ones, in the
    kube service's order. Returns the plan (``unchanged`` steps included) and what
    to wait for."""
    options = kube.options
    ns = namespace or options.namespace
    marks = kube.marks
    desired = render([Source(where, manifests)], ns, marks, kube.kubernetes_version)
    ensure: list[Key] = []
    if options.create_namespace:
        doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        namespace_source = Source("the jsorc namespace", {"Namespace": [doc]})
        (own,) = render([namespace_source], ns, marks, kube.kubernetes_version)
        if own.key not in {d.key for d in desired}:
            desired.insert(0, own)
            ensure.append(own.key)
    cluster = _cluster_of(kube)
    live = {want.key: cluster.get(want.key) for want in desired}
    # No managed list: jsorc deletes nothing, so it needs none.
    actions = compute(desired, live, (), marks, ensure_only=ensure)
    for action in actions:
        if action.verb == "create":
            cluster.create(action.key, action.body or {})
        elif action.verb == "patch":
            cluster.patch(action.key, action.body or {})
    return actions, Readiness.of(desired)


@dataclass(frozen=True)
class Readiness:
    """What a deployed service must show before it is reset: a Running and Ready pod
    for each workload (by its selector), an address in each Service's Endpoints."""

    workloads: tuple[tuple[str, str, str], ...]  # (name, namespace, selector)
    endpoints: tuple[Key, ...]

    @classmethod
    def of(cls, desired: list[Desired]) -> Readiness:
        workloads = []
        endpoints = []
        for want in desired:
            spec: Mapping[str, Any] = want.manifest.get("spec") or {}
            if want.key.kind in WORKLOADS:
                labels = (spec.get("selector") or {}).get("matchLabels") or {}
                selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                workloads.append((want.key.name, want.key.namespace, selector))
            elif want.key.kind == "Service" and spec.get("selector"):
                endpoints.append(Key("v1", "Endpoints", want.key.namespace, want.key.name))
        return cls(tuple(workloads), tuple(endpoints))

    def missing(self, kube: KubeService) -> list[str]:
        """What is not there yet, in words; empty when everything is."""
        cluster = _cluster_of(kube)
        problems = []
        for name, namespace, selector in self.workloads:
            pods = cluster.list("v1", "Pod", [namespace], selector)
            if not any(_ready(pod) for pod in pods):
                phases = ", ".join(sorted({_phase(p) for p in pods})) or "no pods"
                problems.append(f"{name}: no pod Running and Ready ({phases})")
        for key in self.endpoints:
            found = cluster.get(key)
            subsets = (found or {}).get("subsets") or []
            if not any(subset.get("addresses") for subset in subsets):
                problems.append(f"{key.name}: its Endpoints have no address")
        return problems


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Unknown")


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def wait_ready(
    kube: KubeService,
    readiness: Readiness,
    timeout: float,
    poll: float,
    stop: threading.Event,
) -> float:
    """Wait until nothing of ``readiness`` is missing; the seconds it took.

    :class:`DeployTimeout` after ``timeout`` seconds (or when ``stop`` is set),
    naming what was still missing.
    """
    began = time.monotonic()
    deadline = began + timeout
    while True:
        missing = readiness.missing(kube)
        if not missing:
            return time.monotonic() - began
        left = deadline - time.monotonic()
        if left <= 0 or stop.wait(min(poll, left)):
            why = "stopping" if stop.is_set() else f"not ready within {timeout:g} s"
            raise DeployTimeout(f"{why}: {'; '.join(missing)}")
