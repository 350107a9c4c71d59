"""Runtime: plugins, layered config, a registry and a hook, put together and run.

The command line is a thin shell over this class; a host application embeds it::

    runtime = Runtime(config_file="app.yaml")
    runtime.start()
    ...
    runtime.stop()

or, from a running event loop, whose loop then runs the async services::

    async with Runtime(config_file="app.yaml") as runtime:
        db = await runtime.meta.aget_service(DbService)
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jaseci_like.cluster.config import ClusterConfig
from jaseci_like.config.layers import ConfigLayers, validate
from jaseci_like.config.secrets import mask_url
from jaseci_like.config_api import ConfigApi
from jaseci_like.errors import ConfigError, DuplicateService, ServiceStartError
from jaseci_like.hooks.memory import MemoryHook
from jaseci_like.hooks.orm import OrmHook, StoreUnavailable
from jaseci_like.hooks.redis import RedisHook
from jaseci_like.meta import MetaService
from jaseci_like.plugins.manager import Plugins
from jaseci_like.service import CommonService
from jaseci_like.state import ServiceState
from jaseci_like.supervisor import Supervisor, SupervisorConfig, describe_failure

if TYPE_CHECKING:
    from jaseci_like.cluster.node import ClusterNode
    from jaseci_like.cluster.store import ClusterStore

log = logging.getLogger(__name__)

CONFIG_ENV = "JASECI_LIKE_CONFIG"
PROFILE_ENV = "JASECI_LIKE_PROFILE"
#: Sections of the config file that configure the runtime, not a service.
RESERVED_SECTIONS = frozenset({"plugins", "runtime"})
_PLUGIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _names(value: Any) -> Any:
    # "a, b" from an environment variable reads as a list of names.
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if isinstance(value, list):
        # Non-strings are left to the schema's own type check.
        bad = [n for n in value if isinstance(n, str) and not _PLUGIN_NAME.match(n)]
        if bad:
            raise ValueError(f"not plugin names: {bad!r} (entry-point names, e.g. db, redis)")
    return value


class PluginsConfig(BaseModel):
    """``plugins:`` section: which entry-point plugins may load."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)

    _split = field_validator("allow", "deny", mode="before")(_names)


class RuntimeConfig(BaseModel):
    """``runtime:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Seconds that stopping every service may take in all (SIGINT / SIGTERM).
    stop_timeout: float = Field(default=1.5, gt=0, le=60)
    #: The service whose engine is the durable config store (OrmHook's SQL layer).
    sql_service: str = "db"
    #: The service whose client is the shared config cache (RedisHook's layer).
    cache_service: str = "redis"
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    #: The instance registry and the leader lease (``status``, singleton duties).
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``status``: nothing secret in it.

    ``error`` says why the service is not running or not healthy now (None when
    it is fine). ``restarts``, ``gave_up``, ``retry_in`` (seconds to the next
    restart attempt), ``waiting_for`` (a dependency that must run first) and
    ``last_error`` (the last failure it saw, kept after a recovery) come from
    the supervisor.
    """

    name: str
    enabled: bool
    state: str
    healthy: bool | None
    error: str | None
    daemons: tuple[str, ...]
    restarts: int = 0
    gave_up: bool = False
    retry_in: float | None = None
    waiting_for: str | None = None
    last_error: str | None = None


def describe_error(exc: BaseException | None, service: CommonService | None = None) -> str | None:
    """A secret-free description of ``exc`` (``service``'s own secrets masked too)."""
    return describe_failure(exc, service)


def _admitted_plugins(layers: ConfigLayers, discover: bool = True, quiet: bool = False) -> Plugins:
    config = validate(PluginsConfig, layers.resolve("plugins", {}, None))
    assert isinstance(config, PluginsConfig)
    plugins = Plugins(config.allow, config.deny, quiet=quiet)
    if discover:
        plugins.discover()
    return plugins


def register_plugins(meta: MetaService, plugins: Plugins) -> None:
    """Register the services and tasks of ``plugins`` on ``meta``. A service name
    another class already holds marks the plugin that brings it broken."""
    for info, cls in plugins.services():
        name = cls.service_name()
        current = meta.registry.builders.get(name)
        if current is cls:
            continue  # the same plugin loaded twice in one process
        try:
            meta.add_service_builder(name, cls)
        except DuplicateService as exc:
            plugins._broken(info, exc)
    for name, func in plugins.tasks().items():
        meta.registry.tasks.setdefault(name, func)
    meta.registry.plugins_loaded = True


def load_plugins(meta: MetaService) -> Plugins:
    """The plugins the environment admits, registered on ``meta`` (how the shared
    ``MetaService()`` gets its services when no Runtime gave them)."""
    plugins = Runtime.command_plugins(quiet=False)
    register_plugins(meta, plugins)
    return plugins


def _why_not_running(service: CommonService) -> str:
    if service.error is not None:
        return describe_error(service.error) or ""
    if service.state is ServiceState.RUNNING and service.app is None:
        return f"RUNNING, but {type(service).__name__}.run() set no app"
    return service.state.name


class Runtime:
    """Plugins discovered, config layered and validated, services registered.

    Nothing starts until :meth:`start`; every configuration problem of every
    service is found first and raised as one :class:`ConfigError`.
    """

    def __init__(
        self,
        *,
        config_file: str | Path | None = None,
        profile: str | None = None,
        environ: Mapping[str, str] | None = None,
        meta: MetaService | None = None,
        discover: bool = True,
        plugins: Mapping[str, object] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        file = config_file if config_file is not None else env.get(CONFIG_ENV) or None
        self.layers = ConfigLayers(file=Path(file) if file else None, environ=env)
        self.plugins = _admitted_plugins(self.layers, discover)
        for name, plugin in (plugins or {}).items():
            self.plugins.register(name, plugin)
        self.profile = profile if profile is not None else env.get(PROFILE_ENV) or None
        if self.profile:
            known = self.plugins.profiles()
            if self.profile not in known:
                raise ConfigError(
                    f"unknown profile {self.profile!r} "
                    f"(known: {', '.join(sorted(known)) or 'none'})"
                )
            self.layers = self.layers.with_profile(self.profile, known[self.profile])
        settings = validate(RuntimeConfig, self.layers.resolve("runtime", {}, None))
        assert isinstance(settings, RuntimeConfig)
        self.settings = settings
        self.meta = meta if meta is not None else MetaService()
        register_plugins(self.meta, self.plugins)
        self.hook = self._make_hook()
        self.supervisor = Supervisor(self.meta, self.hook, self.settings.supervisor)
        self.meta.registry.supervisor = self.supervisor
        #: This runtime as an instance of the system, once joined (see join_cluster).
        self.instance_id = uuid.uuid4().hex[:12]
        self.node: ClusterNode | None = None
        self._cluster_store: tuple[object, ClusterStore] | None = None
        self.check_config()

    @staticmethod
    def command_plugins(environ: Mapping[str, str] | None = None, quiet: bool = True) -> Plugins:
        """The plugins the environment (and the config file it names) admits, loaded.

        ``quiet``: broken plugins are recorded but not logged (the command line
        loads them twice, and reports them once).
        """
        env = os.environ if environ is None else environ
        file = env.get(CONFIG_ENV) or None
        layers = ConfigLayers(file=Path(file) if file else None, environ=env)
        return _admitted_plugins(layers, quiet=quiet)

    def _make_hook(self) -> MemoryHook:
        hook: MemoryHook
        if "hook" in self.meta.registry.contexts:
            hook = self.meta.build_context("hook", self.layers)
            if not isinstance(hook, MemoryHook):
                raise TypeError(f"the hook context built {type(hook).__name__}, not a MemoryHook")
        else:
            hook = OrmHook(
                self.layers,
                sql_service=self.settings.sql_service,
                cache_service=self.settings.cache_service,
            )
        hook.meta = self.meta
        if isinstance(hook, RedisHook):
            api = ConfigApi(hook)

            def refresh(name: str) -> None:
                from jaseci_like.cluster.refresh import refresh_here

                # Only where it runs: a process that never ran it does not start it.
                api.service_class(name)  # an unknown name fails here, logged
                refresh_here(hook, name)

            hook.on_refresh(refresh)
        return hook

    def check_config(self) -> None:
        """Validate every section of every layer for every service; raise all problems at once."""
        problems: list[str] = []
        known = set(self.meta.service_names())
        for section in sorted(self.layers.section_names() - known - RESERVED_SECTIONS):
            where = "; ".join(
                s.where(section) for s in self.layers.sources() if section in s.section_names()
            )
            problems.append(
                f"section {section!r} (from {where}): no service of that name "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )
        for name in sorted(known):
            cls = self.meta.builder(name)
            if cls.build_config is not CommonService.build_config:
                # The seed's way: its build_config names its defaults, and a config it
                # refuses is kept in its `error` and fails its start, saying why.
                continue
            try:
                validate(cls.config_schema, cls.resolve_config(self.hook))
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)

    # -- lifecycle -----------------------------------------------------------------
    def start(self, strict: bool = True, role: str | None = "embedded") -> MemoryHook:
        """Start every service in dependency order.

        ``strict``: raise :class:`ServiceStartError` if an enabled one did not run.
        ``role``: join the cluster as this (``up``, ``worker``, ``embedded``) before
        the services start, so singleton duties wait for the lease; None: do not.
        """
        self.open_store()
        try:
            self.check_config()  # again, now with the stored layer readable
        except ConfigError:
            self.stop()
            raise
        if role is not None:
            self.join_cluster(role)
        self.meta.start_services(self.hook)
        failed = self.failed_services()
        if failed and strict:
            lines = [f"{s.service_name()}: {_why_not_running(s)}" for s in failed]
            raise ServiceStartError("services did not start:\n  " + "\n  ".join(lines))
        if self.settings.supervisor.enabled:
            self.supervisor.start()
        return self.hook

    # -- the async face -------------------------------------------------------------
    async def astart(self, strict: bool = True, role: str | None = "embedded") -> MemoryHook:
        """:meth:`start` from a running event loop: the async services run on *this*
        loop, so the host awaits engines and clients directly. The blocking start
        runs in a worker thread meanwhile (it waits on this loop)."""
        import asyncio

        self.meta.loop.adopt()
        try:
            return await asyncio.to_thread(self.start, strict, role)
        except BaseException:
            await self.astop()
            raise

    async def astop(self, timeout: float | None = None) -> list[CommonService]:
        """:meth:`stop` from the loop :meth:`astart` ran on; the loop itself goes on."""
        import asyncio

        return await asyncio.to_thread(self.stop, timeout)

    async def __aenter__(self) -> Runtime:
        await self.astart()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    def open_store(self, required: bool = False) -> None:
        """Start only the services that hold stored config (sql and cache), if registered.

        ``required``: raise :class:`StoreUnavailable` (naming the store, secrets
        masked) when the store the config asks for did not start, rather than go
        on without it and pass defaults off as stored values.
        """
        names = [
            n
            for n in (self.settings.sql_service, self.settings.cache_service)
            if self.meta.has_service_builder(n)
        ]
        self.meta.start_services(self.hook, names)
        if not required:
            return
        store = self.store_service()
        if store is not None and not store.is_running():
            name = store.service_name()
            url = store.config.get("url")
            where = f" at {mask_url(url)}" if isinstance(url, str) and url else ""
            # One line: a driver's message may span several.
            why = " ".join((describe_error(store.error, store) or store.state.name).split())
            raise StoreUnavailable(
                f"the config store (the {name} service{where}) is not available: {why}; "
                f"nothing was read or changed (check that it is up and that {name}.url "
                "and its credentials are right)"
            )

    # -- the cluster ------------------------------------------------------------------
    def cluster_store(self) -> ClusterStore:
        """Where the instances meet: the database when the sql service is enabled, else
        Redis; a memory store (alone) when neither is. :class:`StoreUnavailable`
        while the one configured is not running (never a silent switch to another).

        The database first: it is the durable store every process already shares,
        and Redis may be the very service a singleton duty (JsOrc) has to bring
        back, which it could not do if the lease lived in Redis.
        """
        from jaseci_like.cluster.store import MemoryStore

        for name in (self.settings.sql_service, self.settings.cache_service):
            service = self.hook.services.get(name) or self.meta.registry.background.get(name)
            if service is None or not service.enabled:
                continue
            app = service.app if service.is_running() else None
            if app is None:
                raise StoreUnavailable(f"the cluster store ({name}) is not running")
            kept = self._cluster_store
            if kept is not None and kept[0] is app:
                return kept[1]
            store: ClusterStore
            if name == self.settings.cache_service:
                from jaseci_like.cluster.redis_store import RedisStore

                store = RedisStore(app)
            else:
                from jaseci_like.cluster.sql_store import SqlStore

                store = SqlStore(app, self.meta.loop)
            self._cluster_store = (app, store)
            return store
        kept = self._cluster_store
        if kept is None or kept[0] is not None:
            kept = self._cluster_store = (None, MemoryStore())
        return kept[1]

    def join_cluster(self, role: str) -> ClusterNode | None:
        """Register this runtime as an instance (``role``: up, worker, embedded) and
        compete for the leader lease; None when ``runtime.cluster.enabled`` is off."""
        from jaseci_like.cluster.lease import Leadership
        from jaseci_like.cluster.node import ClusterNode, Identity

        config = self.settings.cluster
        if not config.enabled or self.node is not None:
            return self.node
        leadership = Leadership(self.instance_id, self.cluster_store, config)
        self.meta.registry.leadership = leadership
        self.node = ClusterNode(
            Identity(self.instance_id, role),
            self.cluster_store,
            config,
            leadership,
            self.service_report,
            self._api_url,
            self._handle_request,
        )
        self.node.start(self.service_report(health=False))
        return self.node

    def leave_cluster(self, timeout: float = 1.0) -> None:
        """Give the lease up and take this instance out of the registry."""
        node, self.node = self.node, None
        if node is None:
            return
        node.stop(timeout)
        if self.meta.registry.leadership is node.leadership:
            self.meta.registry.leadership = None

    def service_report(self, health: bool = True) -> list[dict[str, Any]]:
        """This runtime's services as the registry shows them (errors masked)."""
        if not health:
            return [
                {"name": name, "enabled": s.enabled, "state": s.state.name, "healthy": None}
                for name, s in self.hook.services.items()
            ]
        return [
            {
                "name": row.name,
                "enabled": row.enabled,
                "state": row.state,
                "healthy": row.healthy,
                "restarts": row.restarts,
                "gave_up": row.gave_up,
                "error": row.error,
                "last_error": row.last_error,
            }
            for row in self.status()
            if row.name in self.hook.services
        ]

    def _api_url(self) -> str | None:
        for service in self.hook.services.values():
            url = getattr(service, "url", None)
            if service.is_running() and isinstance(url, str) and url.startswith("http"):
                return mask_url(url)
        return None

    def _handle_request(self, body: dict[str, Any]) -> dict[str, Any]:
        from jaseci_like.cluster.refresh import refresh_here

        name = body.get("refresh")
        if not isinstance(name, str):
            return {"outcome": "failed", "detail": "not a request this version knows"}
        return refresh_here(self.hook, name)

    def store_service(self) -> CommonService | None:
        """The service holding stored config: the sql service when enabled, else the
        cache service when enabled; None when both are disabled or missing (stored
        config then lives in this process's memory only)."""
        for name in (self.settings.sql_service, self.settings.cache_service):
            service = self.hook.services.get(name) or self.meta.registry.background.get(name)
            if service is not None and service.enabled:
                return service
        return None

    def services(self) -> list[CommonService]:
        return list(self.hook.services.values())

    def failed_services(self) -> list[CommonService]:
        """Enabled services that are not running."""
        return [s for s in self.hook.services.values() if s.enabled and not s.is_running()]

    def stop(self, timeout: float | None = None) -> list[CommonService]:
        """Stop everything in reverse start order; returns services with daemons left."""
        budget = self.settings.stop_timeout if timeout is None else timeout
        started = time.monotonic()
        # First: a standby takes the lease over at once, and a clean exit is not "lost".
        self.leave_cluster(budget / 4)
        # First, so nothing is restarted while stopping. A restart it is in the
        # middle of cannot be cut short; it stops that service itself when done.
        if not self.supervisor.stop(budget / 4):
            log.info(
                "the supervisor is still checking %s; stopping the services meanwhile",
                self.supervisor.busy_with or "a service",
            )
        left = self.meta.stop_all(max(0.1, budget - (time.monotonic() - started)))
        if not self.supervisor.stop(max(0.1, budget - (time.monotonic() - started))):
            log.warning(
                "the supervisor did not end within the stop timeout: still checking %s "
                "(it stops that service itself when done)",
                self.supervisor.busy_with or "a service",
            )
        log.info("stopped in %.3fs", time.monotonic() - started)
        return left

    def status(self) -> list[ServiceStatus]:
        """One row per service; the health checks run at once, each bounded by its
        service's health timeout, so a service that never answers costs that, once."""
        found = [
            (name, service)
            for name in self.meta.service_names()
            if (service := self.hook.services.get(name) or self.meta.registry.background.get(name))
            is not None
        ]
        # Started all together, then waited for one by one.
        checks = {name: s.health_check() for name, s in found if s.is_running()}
        rows = []
        for name, service in found:
            healthy: bool | None = None
            supervision = self.supervisor.states.get(name)
            error = describe_error(service.error, service)
            check = checks.get(name)
            if check is not None:
                try:
                    healthy = service.health_result(check)
                except Exception as exc:  # reported in the row, with secrets masked
                    healthy, error = False, describe_error(exc, service)
                else:
                    if not healthy:
                        error = "health check returned false"
            elif error is None and supervision is not None and service.enabled:
                error = supervision.last_error  # e.g. NOT_STARTED after a reset that raised
            rows.append(
                ServiceStatus(
                    name=name,
                    enabled=service.enabled,
                    state=service.state.name,
                    healthy=healthy,
                    error=error,
                    daemons=tuple(service.daemon_names()),
                    restarts=supervision.restarts if supervision else 0,
                    gave_up=supervision.gave_up if supervision else False,
                    retry_in=supervision.retry_in() if supervision else None,
                    waiting_for=supervision.waiting_for if supervision else None,
                    last_error=supervision.last_error if supervision else None,
                )
            )
        return rows
