"""What the routes share: the registry they find services in, keys, owners, metrics.

Services are looked up per request, not kept: the supervisor may restart one, a
refresh may replace one, and a request must reach the instance running now (or
get a 503). Keys and task owners are built over the db and group_config instances
running now, and built again when either is replaced, so the API itself never
needs a restart for them (``ApiService.rebinds``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jaseci_like_services.api.config import ApiConfig
from jaseci_like_services.api.error_responses import unavailable
from jaseci_like_services.api.keys import ApiKeys
from jaseci_like_services.api.metrics import HttpMetrics
from jaseci_like_services.api.task_owners import TaskOwners

from jaseci_like import CommonService, MemoryHook, MetaService
from jaseci_like.repository import Resilience

if TYPE_CHECKING:
    from jaseci_like_services.group_config.app import GroupConfig
    from jaseci_like_services.task.service import TaskService


@dataclass
class ApiState:
    meta: MetaService
    hook: MemoryHook
    settings: ApiConfig
    resilience: Resilience
    metrics: HttpMetrics
    #: The services readiness covers (what the API needs, and what they need).
    needs: tuple[str, ...]
    #: (db, group_config) instances the keys and owners below were built over.
    _bound: tuple[CommonService, CommonService] | None = field(default=None, repr=False)
    _keys: ApiKeys | None = field(default=None, repr=False)
    _owners: TaskOwners | None = field(default=None, repr=False)

    @property
    def keys(self) -> ApiKeys:
        self._bind()
        assert self._keys is not None
        return self._keys

    @property
    def owners(self) -> TaskOwners:
        self._bind()
        assert self._owners is not None
        return self._owners

    def _bind(self) -> None:
        # Two dict lookups and a compare per request; rebuilt only after a swap.
        bound = (self.running("db"), self.running("group_config"))
        if self._bound is not None and bound[0] is self._bound[0] and bound[1] is self._bound[1]:
            return
        from jaseci_like_services.api.db_source import ApiDbSource

        source = ApiDbSource(bound[0].app)
        self._keys = ApiKeys(source, self.resilience, bound[1].app.users)
        self._owners = TaskOwners(source, self.resilience)
        self._bound = bound

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
