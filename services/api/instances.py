"""The instances sharing the store, each with its services, as the dashboard shows them.

:class:`LocalInstances` answers for this process alone, read from its registry and
supervisor; the instance registry (many processes over one store) will be another
:class:`InstanceSource` behind the same ``GET /v1/instances``.
"""

from __future__ import annotations

import os
import socket
import uuid
from importlib import metadata
from typing import Protocol

from jaseci_like_services.api.dto.v1.system import InstanceV1, ServiceRowV1
from jaseci_like_services.api.state import ApiState

from jaseci_like import ServiceState
from jaseci_like.errors import JaseciLikeError
from jaseci_like.supervisor import describe_failure


class InstanceSource(Protocol):
    def instances(self) -> list[InstanceV1]:
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

    def instances(self) -> list[InstanceV1]:
        return [
            InstanceV1(
                id=self.id,
                host=self.host,
                pid=os.getpid(),
                version=self.version,
                role="runtime",
                api_url=self._api_url(),
                leader=None,
                last_seen=0.0,
                services=service_rows(self.api),
            )
        ]

    def _api_url(self) -> str | None:
        service = self.api.meta.registry.background.get("api")
        url = getattr(service, "url", None)
        return url if isinstance(url, str) else None


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
