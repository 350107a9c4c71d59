"""JsOrcService: keeps the ``keep_alive`` services running, deploying what they need.

Each pass (every ``interval`` seconds, on the leader only), for every keep-alive
service that is enabled and not RUNNING::

    kube running and manifests for it (its own, or kubes/<name>.yaml)?
      yes: apply them (create missing, patch changed, delete nothing)
           -> wait, bounded, for a pod Running and Ready and an Endpoints address
           -> the supervisor restarts it now
      no:  left to the supervisor's restarts with backoff

One restart path: whenever the runtime's supervisor runs, it does every restart
(jsorc only asks it to try now, once what the service needs is deployed); jsorc
resets a service itself only when no supervisor runs (a bare ``MetaService``).
Attempts on one service back off (``backoff_base`` doubled, up to ``backoff_cap``).
Every action is a log line, a metric (``metrics``) and a line of the status
(``jaseci-like jsorc status``).

``leader`` decides whether this instance does the duty: by default, whether it
holds the runtime's leader lease (``jaseci_like.cluster.is_leader``), so among
processes sharing a store only the leader's jsorc acts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from jaseci_like_configs import defaults
from jaseci_like_services.jsorc.config import JsOrcConfig
from jaseci_like_services.jsorc.metrics import JsOrcMetrics
from jaseci_like_services.jsorc.orchestrator import Orchestrator
from jaseci_like_services.jsorc.report import Status

from jaseci_like import CommonService, ConfigError, DependencyError, MemoryHook
from jaseci_like.cluster import is_leader, leader_of


class JsOrcService(CommonService):
    """``app`` is the :class:`Orchestrator`; its passes run in the ``jsorc`` daemon."""

    name = "jsorc"
    config_schema = JsOrcConfig
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: JsOrcConfig | None
    default_config: ClassVar[dict[str, Any]] = defaults("jsorc")
    # A singleton duty: a refresh resets it in place (keeping `leader`), never two at once.
    exclusive = True

    def __init__(self, hook: MemoryHook | None = None) -> None:
        #: Whether this instance does the duty now: the runtime's leader lease by
        #: default (alone, or with no runtime joined to a cluster, it leads).
        self.leader: Callable[[], bool] = self._lease_held
        # Kept across resets, so counters only grow.
        self.metrics = JsOrcMetrics()
        super().__init__(hook)

    @property
    def options(self) -> JsOrcConfig:
        if not isinstance(self.settings, JsOrcConfig):
            raise (
                self.error
                if isinstance(self.error, ConfigError)
                else ConfigError("jsorc: the configuration was not built")
            )
        return self.settings

    def _lease_held(self) -> bool:
        meta = self.hook.meta if self.hook is not None else None
        if meta is None or is_leader(meta, self.service_name()):
            return True
        # With the lease's store down nobody can lead, and that store may be what
        # jsorc keeps alive: it acts (deploys are create-or-patch, restarts local).
        lead = leader_of(meta)
        return lead is not None and lead.store_unreachable

    def is_leader(self) -> bool:
        """``leader()``, looked up at each pass (it may be replaced while running)."""
        return self.leader()

    @property
    def orchestrator(self) -> Orchestrator:
        app = self.app
        if not isinstance(app, Orchestrator):
            raise DependencyError(f"the jsorc service is not running ({self.state.name})")
        return app

    @property
    def status(self) -> Status:
        return self.orchestrator.status

    def run(self, hook: MemoryHook | None = None) -> None:
        if hook is None or hook.meta is None:
            raise DependencyError("jsorc needs a hook attached to a MetaService")
        self.app = Orchestrator(self.options, hook, self.metrics, self.is_leader, quiet=self.quiet)

    def post_run(self, hook: MemoryHook | None = None) -> None:
        self.spawn_daemon(jsorc=self.orchestrator.loop)
