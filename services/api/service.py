"""ApiService: the HTTP API, served by uvicorn on the runtime's shared event loop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from jaseci_like_configs import defaults
from jaseci_like_services.api.config import ApiConfig

from jaseci_like import CommonService, MemoryHook
from jaseci_like.errors import DependencyError

if TYPE_CHECKING:
    from jaseci_like_services.api.keys import ApiKeys
    from jaseci_like_services.api.server import LoopServer
    from jaseci_like_services.api.state import ApiState

log = logging.getLogger(__name__)


class ApiService(CommonService):
    """``app`` is the FastAPI application; ``url`` is where it is served.

    Stopping gives the requests in flight ``api.stop_timeout`` seconds (at most
    part of the stop's budget) to finish, then ends those left; each request's
    transaction commits whole or rolls back.
    """

    name = "api"
    config_schema = ApiConfig
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: ApiConfig | None
    default_config: ClassVar[dict[str, Any]] = defaults("api")
    requires = ("db", "group_config", "task")
    # Finds db, group_config and task per request (ApiState), so their restarts need
    # none of it; one port cannot be served twice, so a refresh resets it in place.
    rebinds = True
    exclusive = True
    migrations: ClassVar[Path] = Path(__file__).parent / "migrations"

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.server: LoopServer | None = None
        self.state_of_routes: ApiState | None = None
        self._stop_budget: float | None = None
        super().__init__(hook)

    @property
    def api_settings(self) -> ApiConfig:
        settings = self.settings
        assert isinstance(settings, ApiConfig)
        return settings

    @property
    def url(self) -> str | None:
        """``http://host:port`` while serving (the port picked, when configured as 0)."""
        return self.server.url if self.server is not None else None

    @property
    def port(self) -> int | None:
        return self.server.port if self.server is not None else None

    def run(self, hook: MemoryHook | None = None) -> None:
        meta = hook.meta if hook is not None else None
        if hook is None or meta is None:
            raise DependencyError("api needs a hook attached to a MetaService")
        # Imported at start: plugin loading must not pay for FastAPI and uvicorn.
        from jaseci_like_services.api.app import create_app, wrap
        from jaseci_like_services.api.metrics import HttpMetrics
        from jaseci_like_services.api.server import LoopServer
        from jaseci_like_services.api.state import ApiState
        from prometheus_client import CollectorRegistry

        from jaseci_like.repository import OperationMetrics, Resilience

        registry = CollectorRegistry()
        needs = [n for level in meta.start_levels([self.service_name()]) for n in level]
        state = ApiState(
            meta=meta,
            hook=hook,
            settings=self.api_settings,
            resilience=Resilience(OperationMetrics("api", registry)),
            metrics=HttpMetrics(registry),
            needs=tuple(n for n in needs if n != self.service_name()),
        )
        app = create_app(state)
        served = wrap(app, state)
        server = LoopServer(served, self.api_settings, meta.loop, served.drain)
        server.start()
        self.server, self.state_of_routes, self.app = server, state, app

    @property
    def keys(self) -> ApiKeys:
        """The API keys over the db and group_config running now."""
        if self.state_of_routes is None:
            raise DependencyError("the api service is not running")
        return self.state_of_routes.keys

    def stop(self, timeout: float | None = None) -> Self:
        self._stop_budget = timeout
        return super().stop(timeout)

    def teardown(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            budget = self._stop_budget if self._stop_budget is not None else self.stop_timeout
            # Less than the whole budget: CommonService.stop waits for this thread
            # within the same budget.
            server.stop(max(0.1, budget * 0.9))

    def health(self) -> bool:
        """The server task is alive and its socket is listening."""
        server = self.server
        return server is not None and server.alive() and server.listening()
