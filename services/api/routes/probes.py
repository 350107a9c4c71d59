"""``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus text).

No API key is needed: orchestrators and scrapers call these, and they tell
nothing beyond service names, states and counters.
"""

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from jaseci_like_services.api.dto.v1 import HealthV1, ReadinessV1, ServiceReadinessV1
from jaseci_like_services.api.metrics import (
    CONTENT_TYPE,
    ServiceSample,
    exposition,
    service_registry,
)
from jaseci_like_services.api.routes.common import JsonBody
from jaseci_like_services.api.state import ApiState

from jaseci_like import ServiceState
from jaseci_like.cluster import leader_of


def readiness(api: ApiState) -> ReadinessV1:
    """Each service the API needs, RUNNING and healthy? Plus any service the
    supervisor gave up on. Blocking (health checks wait on their servers)."""
    supervisor = api.meta.registry.supervisor
    states = dict(supervisor.states) if supervisor is not None else {}
    given_up = [name for name, s in states.items() if s.gave_up and name not in api.needs]
    rows: list[ServiceReadinessV1] = []
    ready = True
    for name in [*api.needs, *given_up]:
        service = api.meta.registry.background.get(name)
        supervision = states.get(name)
        gave_up = supervision is not None and supervision.gave_up
        healthy: bool | None = None
        if service is not None and service.is_running():
            try:
                healthy = bool(service.health())
            except Exception:  # unhealthy is the answer; the supervisor logs why
                healthy = False
        state = service.state.name if service is not None else ServiceState.NOT_STARTED.name
        if name in api.needs and (healthy is not True or gave_up):
            ready = False
        rows.append(
            ServiceReadinessV1(
                name=name,
                enabled=service is not None and service.enabled,
                state=state,
                healthy=healthy,
                gave_up=gave_up,
                restarts=supervision.restarts if supervision is not None else 0,
            )
        )
    return ReadinessV1(ready=ready, services=rows)


def service_samples(api: ApiState) -> list[ServiceSample]:
    """Every service of the registry with its supervisor's counts; the health checks
    run all at once, each bounded by its service's timeout. Blocking."""
    supervisor = api.meta.registry.supervisor
    states = dict(supervisor.states) if supervisor is not None else {}
    found = [
        (name, service)
        for name in api.meta.service_names()
        if (service := api.meta.registry.background.get(name)) is not None
    ]
    checks = {name: s.health_check() for name, s in found if s.is_running()}
    samples = []
    for name, service in found:
        healthy = False
        check = checks.get(name)
        if check is not None:
            try:
                healthy = service.health_result(check)
            except Exception:  # unhealthy is the answer; status and the supervisor say why
                healthy = False
        supervision = states.get(name)
        samples.append(
            ServiceSample(
                name=name,
                enabled=service.enabled,
                state=service.state.name,
                healthy=healthy,
                restarts=supervision.restarts if supervision is not None else 0,
                gave_up=supervision is not None and supervision.gave_up,
            )
        )
    return samples


def leadership(api: ApiState) -> bool | None:
    """Does this instance hold the lease for singleton duties? None (no runtime of
    this registry joined a cluster) leaves the ``jaseci_like_leader`` gauge out."""
    lead = leader_of(api.meta)
    return None if lead is None else lead.is_leader()


def probe_routes(api: ApiState) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/healthz", response_model=HealthV1, operation_id="healthz")
    async def healthz() -> JsonBody:
        """Liveness: the server answers (it says nothing of the services behind it)."""
        return JsonBody(HealthV1())

    @router.get(
        "/readyz",
        response_model=ReadinessV1,
        operation_id="readyz",
        responses={503: {"model": ReadinessV1, "description": "Not ready."}},
    )
    async def readyz() -> JsonBody:
        """Readiness: every service the API needs is RUNNING and healthy (else 503)."""
        body = await run_in_threadpool(readiness, api)
        return JsonBody(body, status_code=200 if body.ready else 503)

    @router.get(
        "/metrics",
        response_class=Response,
        operation_id="metrics",
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        """Prometheus text: HTTP requests, API key checks, group_config operations,
        and each service's state, health and restarts."""
        registries = [api.metrics.registry]
        group_config = api.meta.registry.background.get("group_config")
        if group_config is not None and group_config.app is not None:
            registries.append(group_config.app.metrics.registry)
        samples = await run_in_threadpool(service_samples, api)
        registries.append(service_registry(samples, leadership(api)))
        return Response(exposition(registries), media_type=CONTENT_TYPE)

    return router
