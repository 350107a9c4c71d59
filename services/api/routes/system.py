"""``/v1/instances`` and ``/v1/config``: what the runtime is doing, for operators.

Admins and superadmins only: service errors and config say more about the
system than a group member needs. Both read live state, so each request runs in
a worker thread (health checks and the config store may block).
"""

# No `from __future__ import annotations`: FastAPI reads the parameter annotations,
# and they name the `Caller` dependency local to each router factory.
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from jaseci_like_services.api.config_view import all_configs
from jaseci_like_services.api.dto.v1.system import ConfigListV1, InstanceListV1
from jaseci_like_services.api.instances import InstanceSource
from jaseci_like_services.api.routes.common import ERRORS, JsonBody
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.group_config.errors import Forbidden
from jaseci_like_services.group_config.types import CurrentUser, Role

from jaseci_like import ConfigApi

OPERATORS = frozenset({Role.ADMIN, Role.SUPERADMIN})


def require_operator(user: CurrentUser) -> None:
    if user.role not in OPERATORS:
        raise Forbidden("only an admin or a superadmin may see the runtime's services and config")


def system_routes(api: ApiState, caller: Callable[..., Awaitable[CurrentUser]]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["system"], responses=ERRORS)
    Caller = Annotated[CurrentUser, Depends(caller)]

    @router.get("/instances", response_model=InstanceListV1, operation_id="instances-list")
    async def list_instances(request: Request, user: Caller) -> JsonBody:
        """Every instance sharing the store with its services: state, health, restarts,
        next retry, last error (masked), dependencies, who leads; ``problem`` says
        why only this process is shown when the registry cannot be read."""
        require_operator(user)
        source: InstanceSource = request.app.state.instances
        return JsonBody(await run_in_threadpool(source.instances))

    @router.get("/config", response_model=ConfigListV1, operation_id="config-list")
    async def list_config(user: Caller) -> JsonBody:
        """Each service's effective config, every key with the layer it came from
        (defaults, profile, file, stored, environment), secrets masked."""
        require_operator(user)
        configs = ConfigApi(api.hook)
        names = sorted(api.meta.service_names())
        return JsonBody(ConfigListV1(items=await run_in_threadpool(all_configs, configs, names)))

    return router
