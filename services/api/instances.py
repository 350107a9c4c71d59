"""The instances sharing the store, each with its services, as the dashboard shows them.

:class:`RegistryInstances` reads the instance registry (every ``up``, worker and
embedding host that joined the store's cluster), with this process's own services
checked live; where this runtime has not joined one (``runtime.cluster.enabled``
off), it answers for this process alone, as :class:`LocalInstances` does.
"""

from __future__ import annotations

import os
import socket
import uuid
from importlib import metadata
from typing import Any, Protocol

from jaseci_like_services.api.dto.v1.system import InstanceListV1, InstanceV1, ServiceRowV1
from jaseci_like_services.api.state import ApiState

from jaseci_like import ServiceState
from jaseci_like.cluster.view import InstanceView, read_cluster
from jaseci_like.errors import JaseciLikeError
from jaseci_like.supervisor import describe_failure


class InstanceSource(Protocol):
    def instances(self) -> InstanceListV1:
        """Every instance with its services. Blocking: health checks wait on servers."""
        ...


def _version() -> str:
    try:
        return metadata.version("jaseci-like")
    except metadata.PackageNotFoundError:
        return "unknown"


class LocalInstances:
    """This process as the one instance: its services, states, health and restarts."""

    def __init__(self, api: ApiState) -> None:
        self.api = api
        self.id = uuid.uuid4().hex[:12]
        self.host = socket.gethostname()
        self.version = _version()

    def instances(self) -> InstanceListV1:
        return InstanceListV1(items=[self.this_process(self.id, leader=None)])

    def this_process(self, instance_id: str, leader: bool | None) -> InstanceV1:
        return InstanceV1(
            id=instance_id,
            host=self.host,
            pid=os.getpid(),
            version=self.version,
            role="runtime",
            api_url=self._api_url(),
            leader=leader,
            last_seen=0.0,
            services=service_rows(self.api),
        )

    def _api_url(self) -> str | None:
        service = self.api.meta.registry.background.get("api")
        url = getattr(service, "url", None)
        return url if isinstance(url, str) else None


class RegistryInstances(LocalInstances):
    """Every instance of the registry; this one with its services checked now, the
    others as their last heartbeat reported them (``last_seen`` seconds ago, ``lost``
    once silent past their own limit). A registry that cannot be read is said in
    ``problem``, with this process shown alone: never a 500, never silently."""

    def instances(self) -> InstanceListV1:
        leadership = self.api.meta.registry.leadership
        if leadership is None:  # not in a cluster: this process is all there is
            return super().instances()
        try:
            view = read_cluster(leadership.store(), prune=False)
        except Exception as exc:  # the store is down or refuses: say so, show ourselves
            own = self.this_process(leadership.holder, leader=leadership.is_leader())
            problem = f"the instance registry could not be read: {describe_failure(exc)}"
            return InstanceListV1(items=[own], problem=problem)
        items = []
        own_seen = False
        for instance in view.instances:
            if instance.id == leadership.holder:
                own_seen = True
                items.append(self._own(instance, view.leads(instance)))
            else:
                items.append(self._reported(instance, view.leads(instance)))
        if not own_seen:  # joined, but its first record is not written yet
            items.insert(0, self.this_process(leadership.holder, leadership.is_leader()))
        return InstanceListV1(items=items)

    def _own(self, instance: InstanceView, leads: bool) -> InstanceV1:
        own = self.this_process(instance.id, leader=leads)
        return own.model_copy(update={"role": str(instance.record.get("role") or own.role)})

    def _reported(self, instance: InstanceView, leads: bool) -> InstanceV1:
        record = instance.record
        levels = _levels(self.api)
        return InstanceV1(
            id=instance.id,
            host=str(record.get("host") or "?"),
            pid=_int(record.get("pid")),
            version=str(record.get("version") or "unknown"),
            role=str(record.get("role") or "runtime"),
            api_url=record.get("api_url") if isinstance(record.get("api_url"), str) else None,
            leader=leads,
            last_seen=round(instance.age, 3),
            lost=instance.lost,
            services=[self._reported_row(row, levels) for row in instance.services()],
        )

    def _reported_row(self, row: dict[str, Any], levels: dict[str, int]) -> ServiceRowV1:
        name = str(row.get("name"))
        try:
            requires = sorted(set(self.api.meta.builder(name).requires))
        except JaseciLikeError:  # a service this process does not have
            requires = []
        healthy = row.get("healthy")
        return ServiceRowV1(
            name=name,
            enabled=bool(row.get("enabled")),
            state=str(row.get("state") or "NOT_STARTED"),
            healthy=healthy if isinstance(healthy, bool) else None,
            error=_text(row.get("error")),
            restarts=_int(row.get("restarts")),
            last_error=_text(row.get("last_error")),
            gave_up=bool(row.get("gave_up")),
            requires=requires,
            level=levels.get(name, 0),
        )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _levels(api: ApiState) -> dict[str, int]:
    try:
        levels = api.meta.start_levels()
    except JaseciLikeError:  # a cycle or a missing dependency: shown flat, not a 500
        return {}
    return {name: n for n, level in enumerate(levels) for name in level}


def service_rows(api: ApiState) -> list[ServiceRowV1]:
    """One row per registered service; the health checks start together and are
    each waited for within their service's own timeout."""
    meta = api.meta
    supervisor = meta.registry.supervisor
    states = dict(supervisor.states) if supervisor is not None else {}
    levels = _levels(api)
    names = sorted(meta.service_names(), key=lambda n: (levels.get(n, 0), n))
    found = {n: meta.registry.background.get(n) for n in names}
    checks = {n: s.health_check() for n, s in found.items() if s is not None and s.is_running()}
    rows = []
    for name in names:
        service = found[name]
        supervision = states.get(name)
        healthy: bool | None = None
        error = describe_failure(service.error, service) if service is not None else None
        check = checks.get(name)
        if service is not None and check is not None:
            try:
                healthy = service.health_result(check)
            except Exception as exc:  # the row says why; the supervisor acts on it
                healthy, error = False, describe_failure(exc, service)
            else:
                if not healthy:
                    error = "health check returned false"
        elif error is None and supervision is not None and service is not None:
            error = supervision.last_error if service.enabled else None
        rows.append(
            ServiceRowV1(
                name=name,
                enabled=service.enabled if service is not None else False,
                state=(service.state if service is not None else ServiceState.NOT_STARTED).name,
                healthy=healthy,
                error=error,
                restarts=supervision.restarts if supervision else 0,
                retry_in=supervision.retry_in() if supervision else None,
                waiting_for=supervision.waiting_for if supervision else None,
                last_error=supervision.last_error if supervision else None,
                gave_up=supervision.gave_up if supervision else False,
                requires=sorted(set(meta.builder(name).requires)),
                level=levels.get(name, 0),
            )
        )
    return rows
