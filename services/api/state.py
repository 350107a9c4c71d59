"""What the routes share: the registry they find services in, keys, owners, metrics.

Services are looked up per request, not kept: the supervisor may restart one,
and a request must reach the instance running now (or get a 503).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jaseci_like_services.api.config import ApiConfig
from jaseci_like_services.api.error_responses import unavailable
from jaseci_like_services.api.keys import ApiKeys
from jaseci_like_services.api.metrics import HttpMetrics
from jaseci_like_services.api.task_owners import TaskOwners

from jaseci_like import CommonService, MemoryHook, MetaService

if TYPE_CHECKING:
    from jaseci_like_services.group_config.app import GroupConfig
    from jaseci_like_services.task.service import TaskService


@dataclass
class ApiState:
    meta: MetaService
    hook: MemoryHook
    settings: ApiConfig
    keys: ApiKeys
    owners: TaskOwners
    metrics: HttpMetrics
    #: The services readiness covers (what the API needs, and what they need).
    needs: tuple[str, ...]

    def running(self, name: str) -> CommonService:
        service = self.meta.registry.background.get(name)
        if service is None or not service.is_running():
            raise unavailable(name)
        return service

    def group_config(self) -> GroupConfig:
        app: GroupConfig = self.running("group_config").app
        return app

    def tasks(self) -> TaskService:
        from jaseci_like_services.task.service import TaskService

        service = self.running("task")
        assert isinstance(service, TaskService)
        return service
