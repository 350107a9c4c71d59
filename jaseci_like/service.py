"""CommonService: the base of every service, and its lifecycle."""

from __future__ import annotations

import copy
import inspect
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Self

from pydantic import TypeAdapter, ValidationError

from jaseci_like.config.layers import Resolved, validate
from jaseci_like.config.schema import FreeformConfig, ServiceConfig, known_keys
from jaseci_like.config.secrets import mask_url
from jaseci_like.daemons import DaemonGroup
from jaseci_like.errors import ConfigError, DependencyError, HealthCheckTimeout
from jaseci_like.hooks.memory import MemoryHook
from jaseci_like.manifests import Manifests, load_manifests
from jaseci_like.state import ServiceState

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_S = ServiceState
#: Seconds between looks at a start in progress while ``stop`` waits for ``_lock``.
_STOP_POLL = 0.05


@cache
def _manifests_of(path: Path) -> Manifests:
    return load_manifests(path)


_BOOL: TypeAdapter[bool] = TypeAdapter(bool)


def _flag(value: object) -> bool:
    """``enabled`` / ``quiet`` of a refused config, read as the schema would (``"true"``
    from the environment counts); anything unreadable counts as False."""
    try:
        return _BOOL.validate_python(value)
    except ValidationError:
        return False


def _call(method: Callable[..., object], hook: MemoryHook | None) -> None:
    """``method(hook)``, or ``method()`` for a ``run(self)`` / ``post_run(self)`` that
    takes no hook (the seed's StripeService writes ``def run(self):``)."""
    try:
        takes_hook = bool(inspect.signature(method).parameters)
    except (TypeError, ValueError):  # no signature to read: assume the usual form
        takes_hook = True
    if takes_hook:
        method(hook)
    else:
        method()


class CommonService:
    """Base of every service: settings from hooks, a lifecycle, owned daemons.

    Lifecycle (``start`` never raises; failures land in ``error``)::

        NOT_STARTED --start--> STARTED --run ok--> RUNNING --stop--> STOPPING --> STOPPED
                                  |                   |                              |
                                  | run raised        | post_run raised,             |
                                  v                   | daemon crashed               |
                                FAILED <--------------+                              |
                                  |                                                  |
                                  +--reset--> NOT_STARTED <--------reset-------------+

    Subclasses set ``name`` (the registry name and config section), usually
    ``config_schema`` and ``default_config``, and override ``run`` (set ``app``),
    maybe ``post_run`` (spawn daemons), ``teardown`` (release ``app``) and ``health``.
    A service that declares no ``config_schema`` keeps every key its layers give
    (the seed's way: ``build_config`` returning ``hook.service_glob(...)``).

    >>> class Clock(CommonService):
    ...     name = "clock"
    ...     default_config = {"enabled": True}
    ...     def run(self, hook=None):
    ...         self.app = time.monotonic
    >>> Clock().start().is_running()
    True
    """

    #: Registry name and config section ("redis"); the config glob is ``REDIS_CONFIG``.
    name: ClassVar[str] = ""
    #: Strict (unknown keys refused) when declared; free-form JSON keys when not.
    config_schema: ClassVar[type[ServiceConfig]] = FreeformConfig
    default_config: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: A multi-document YAML file of Kubernetes manifests, or None.
    kube_manifest: ClassVar[Path | None] = None
    #: Names of the services this one needs RUNNING before it starts.
    requires: ClassVar[tuple[str, ...]] = ()
    #: Seconds ``stop`` may take by default.
    stop_timeout: ClassVar[float] = 5.0
    #: True for services whose start waits on a server; those start in parallel threads.
    start_blocks: ClassVar[bool] = False
    #: Seconds ``health()`` may take before it counts as failed, unless the service
    #: overrides :meth:`health_timeout` (e.g. with its config's own timeout).
    default_health_timeout: ClassVar[float] = 5.0
    #: True for a service that looks up the apps of the services it ``requires`` at
    #: each use, keeping none: when one of them is restarted or replaced, this one
    #: goes on serving instead of being restarted with it.
    rebinds: ClassVar[bool] = False
    #: True for a service of which two instances cannot run at once (one port, one
    #: worker): a refresh resets it in place instead of starting the new one first.
    exclusive: ClassVar[bool] = False

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.app: Any = None
        self.enabled = False
        self.quiet = False
        self.state = _S.NOT_STARTED
        self.config: Mapping[str, Any] = MappingProxyType({})
        self.settings: ServiceConfig | None = None
        self.kube: Manifests | None = None
        self.error: BaseException | None = None
        self.hook = hook
        self._lock = threading.RLock()
        #: Guards the STARTED -> RUNNING move against a concurrent ``stop`` (which
        #: cannot take ``_lock`` while a start holds it): see ``_stop_requested``.
        self._handoff = threading.Lock()
        #: Set by a ``stop`` that came while a start was running: that start stops
        #: the service as soon as ``run`` returns.
        self._stop_requested = False
        #: The health check in flight (one at a time) and when it began.
        self._health: tuple[Future[bool], float] | None = None
        self._health_lock = threading.Lock()
        #: True once teardown has run (or been handed off) for the current app.
        self._released = False
        self._daemons = DaemonGroup(self.label(), self._daemon_crashed)
        self.build_settings(hook)

    # -- identity --------------------------------------------------------------
    @classmethod
    def service_name(cls) -> str:
        """``name``, or the class name without a ``Service`` suffix, lower case."""
        return cls.name or cls.__name__.removesuffix("Service").lower()

    @classmethod
    def config_glob(cls) -> str:
        return f"{cls.service_name().upper()}_CONFIG"

    @classmethod
    def check_class(cls) -> None:
        """Refuse a badly declared service class early (at plugin load, not first use)."""
        name = cls.service_name()
        if not _NAME.match(name):
            raise TypeError(f"{cls.__qualname__}: service name {name!r} must match {_NAME.pattern}")
        if not (
            isinstance(cls.config_schema, type) and issubclass(cls.config_schema, ServiceConfig)
        ):
            raise TypeError(f"{cls.__qualname__}: config_schema must subclass ServiceConfig")
        if cls.build_config is CommonService.build_config:
            # (An overridden build_config names its own defaults, checked when built.)
            validate(cls.config_schema, Resolved(name, dict(cls.default_config)))

    def label(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.label()} {self.service_name()!r} {self.state.name}>"

    # -- settings --------------------------------------------------------------
    def build_settings(self, hook: MemoryHook | None) -> None:
        """Read kube manifests and config; a bad config leaves the service unstartable."""
        source = hook if hook is not None else MemoryHook()
        raw: Mapping[str, Any] = {}
        try:
            self.kube = self.build_kube(source)
            raw = self.build_config(source)
            resolved = source.resolved(self.config_glob())
            if resolved is None or resolved.values is not raw:
                resolved = Resolved(self.service_name(), dict(raw), {})
            settings = validate(self.config_schema, resolved)
        except ConfigError as exc:
            # Refused, but not forgotten: `start` of a service whose config asks for
            # it moves to FAILED with this error, which status and the supervisor show.
            self.settings = None
            self.config = MappingProxyType({})
            self.enabled = _flag(raw.get("enabled"))
            self.error = exc
            self.quiet = _flag(raw.get("quiet"))
            if not self.quiet:  # quiet quiets the log line only
                log.error("%s: configuration refused: %s", self.label(), exc)
            return
        assert isinstance(settings, ServiceConfig)
        self.settings = settings
        values = settings.model_dump()
        self.enabled = bool(values.pop("enabled"))
        self.quiet = bool(values.pop("quiet"))
        self.config = MappingProxyType(values)

    def build_config(self, hook: MemoryHook) -> dict[str, Any]:
        """The effective config (seed: ``hook.service_glob(NAME_CONFIG, DEFAULTS)``)."""
        return self.resolve_config(hook).values

    @classmethod
    def config_defaults(cls, hook: MemoryHook) -> Mapping[str, Any]:
        """What the config starts from: ``default_config``, or, for a service whose
        ``build_config`` passes its own defaults to ``hook.service_glob`` (the seed's
        way), those defaults (learnt by building its settings once, not starting it)."""
        if cls.build_config is CommonService.build_config:
            return cls.default_config
        glob = cls.config_glob()
        found = hook.glob_default(glob)
        if found is None:
            cls(hook)  # settings only: its build_config names its defaults
            found = hook.glob_default(glob)
        return cls.default_config if found is None else found

    @classmethod
    def resolve_config(cls, hook: MemoryHook) -> Resolved:
        """Every layer of this service's config merged on ``hook``, with origins."""
        return hook.resolve_config(
            cls.config_glob(), cls.config_defaults(hook), known_keys(cls.config_schema)
        )

    def build_kube(self, hook: MemoryHook) -> Manifests | None:
        """Manifests grouped by kind, or None for a service without any.

        Read from the packaged file every time (copied, as they are cached), not
        through the config store: a stored copy would outlive the release that
        shipped it and hide the manifests of a newer one.
        """
        if self.kube_manifest is None:
            return None
        return copy.deepcopy(_manifests_of(self.kube_manifest))

    # -- lifecycle -------------------------------------------------------------
    def _move(self, target: ServiceState) -> None:
        if not self.state.can_move_to(target):  # repr only for the error message
            self.state.check_move(target, repr(self))
        self.state = target

    def is_ready(self) -> bool:
        return self.state is _S.NOT_STARTED and self.app is None

    def is_running(self) -> bool:
        return self.state is _S.RUNNING and self.app is not None

    def has_failed(self) -> bool:
        return self.state is _S.FAILED

    def start(self, hook: MemoryHook | None = None) -> Self:
        """Run an enabled, ready service; a failure sets FAILED and ``error``, never raises."""
        hook = hook if hook is not None else self.hook
        with self._lock:
            if not self.enabled or not self.is_ready():
                return self
            self._stop_requested = False  # before STARTED: a stop may ask from then on
            self._move(_S.STARTED)
            if self.settings is None and isinstance(self.error, ConfigError):
                self._fail(self.error)  # refused config: FAILED, saying why
                return self
            self.error = None
            self._released = False
            stop_now = False
            try:
                self._require(hook)
                _call(self.run, hook)
                with self._handoff:
                    stop_now = self._stop_requested
                    running = self.state is _S.STARTED
                    if running:
                        self._move(_S.RUNNING)
                if running and not stop_now:
                    _call(self.post_run, hook)
            except Exception as exc:  # start never raises: the error is kept in `error`
                self._fail(exc)
                return self
            if stop_now:
                log.info(
                    "%s: started, and stopped at once (a stop came while it started)", self.label()
                )
                self.stop()
        return self

    def _require(self, hook: MemoryHook | None) -> None:
        if not self.requires:
            return
        meta = hook.meta if hook is not None else None
        if meta is None:
            raise DependencyError(
                f"{self.label()} needs {', '.join(self.requires)}, but was started "
                "without a hook attached to a MetaService"
            )
        for dep in self.requires:
            service = meta.get_service(dep, hook)
            if not service.is_running():
                why = "disabled" if not service.enabled else service.state.name
                raise DependencyError(
                    f"{self.label()} needs service {dep!r}, which is not running ({why})"
                )

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.state not in (_S.STARTED, _S.RUNNING):
                return
            self.error = exc
            self._move(_S.FAILED)
        if not self.quiet:
            log.error("Skipping %s: %s", self.label(), mask_url(f"{type(exc).__name__}: {exc}"))
        try:
            self.failed()
        except Exception:
            log.exception("%s: failed() raised while cleaning up", self.label())

    def _daemon_crashed(self, name: str, exc: BaseException) -> None:
        if not self.quiet:
            log.error("%s: daemon %r crashed", self.label(), name)
        self._fail(exc)

    def stop(self, timeout: float | None = None) -> Self:
        """Stop daemons and release ``app`` within ``timeout`` seconds; STOPPED after."""
        budget = self.stop_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        if not self._lock_for_stop(deadline):
            return self
        try:
            if self.state is _S.RUNNING:
                self._move(_S.STOPPING)
                moving = True
            elif self.state is _S.FAILED:
                moving = False  # release what is left; the state stays FAILED
            else:
                return self
            self._daemons.signal()
        finally:
            self._lock.release()
        self._release(max(0.0, deadline - time.monotonic()))
        self._daemons.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            self.app = None
            if moving:
                self._move(_S.STOPPED)
        return self

    def _lock_for_stop(self, deadline: float) -> bool:
        """Take ``_lock`` for ``stop``; False (the caller returns) when a start holds it.

        A start cannot be cut short (``run`` may be waiting on a server), and waiting
        for it would spend the stop budget of every other service: it is asked to
        stop the service itself once ``run`` returns.
        """
        while not self._lock.acquire(timeout=_STOP_POLL):
            with self._handoff:
                if self.state is _S.STARTED:
                    self._stop_requested = True
                    log.warning(
                        "%s: still starting; it will be stopped as soon as its start returns",
                        self.label(),
                    )
                    return False
            if time.monotonic() >= deadline:
                log.warning(
                    "%s: not stopped: busy (%s) for the whole stop timeout",
                    self.label(),
                    self.state.name,
                )
                return False
        return True

    def reset(self, hook: MemoryHook | None = None, start: bool = True) -> Self:
        """Stop if needed, re-read config, rebuild, and (by default) start again."""
        hook = hook if hook is not None else self.hook
        self.stop()
        with self._lock:
            if self.state in (_S.FAILED, _S.STOPPED):
                self._move(_S.NOT_STARTED)
            self.app = None
            self.error = None
            self.hook = hook
            self.build_settings(hook)
        if start:
            self.start(hook)
        return self

    # -- daemons ---------------------------------------------------------------
    def spawn_daemon(self, **targets: Callable[..., object]) -> list[str]:
        """Start named daemon threads owned by this service; live names are not respawned."""
        return self._daemons.spawn(targets)

    def terminate_daemon(self, *names: str, timeout: float | None = None) -> list[str]:
        """Stop named daemons (cooperatively); returns those still alive after ``timeout``."""
        budget = self.stop_timeout if timeout is None else timeout
        return self._daemons.terminate(*names, timeout=budget)

    def daemon_names(self) -> list[str]:
        return self._daemons.names()

    # -- overridable -------------------------------------------------------------
    def run(self, hook: MemoryHook | None = None) -> None:
        """Create ``app``. Raise to fail the start."""

    def post_run(self, hook: MemoryHook | None = None) -> None:
        """Called once RUNNING: spawn daemons here."""

    def failed(self) -> None:
        """Called after the move to FAILED: release what ``run`` made."""
        self._daemons.signal()
        self._release(self.stop_timeout)
        self.app = None

    def _release(self, budget: float) -> None:
        """Run ``teardown`` once per started app, waiting at most ``budget`` seconds.

        A teardown that overruns goes on in a daemon thread; ``stop`` stays bounded.
        """
        with self._lock:
            if self.app is None or self._released:
                return
            self._released = True
        if type(self).teardown is CommonService.teardown:
            return  # nothing to release; no thread needed
        worker = threading.Thread(
            target=self._teardown_logged, name=f"{self.label()}:teardown", daemon=True
        )
        worker.start()
        worker.join(budget)
        if worker.is_alive():
            log.warning(
                "%s: teardown did not finish within %.2fs; it goes on in the background",
                self.label(),
                budget,
            )

    def _teardown_logged(self) -> None:
        try:
            self.teardown()
        except Exception as exc:
            log.warning("%s: teardown raised: %s", self.label(), mask_url(str(exc)))

    def teardown(self) -> None:
        """Release ``app`` (close clients, dispose engines, stop library loops)."""

    def health(self) -> bool:
        """A cheap liveness check of the wrapped resource (PING, SELECT 1, NOOP...)."""
        return self.is_running()

    def health_timeout(self) -> float:
        """Seconds :meth:`check_health` waits for ``health()`` (override to use a
        timeout of the service's config)."""
        return self.default_health_timeout

    def health_check(self) -> tuple[Future[bool], float]:
        """The health check in flight, started now (in a daemon thread) if none is,
        and ``time.monotonic()`` of its start. One at a time: a check that hangs is
        waited on again, not piled up."""
        with self._health_lock:
            if self._health is not None and not self._health[0].done():
                return self._health
            future: Future[bool] = Future()
            future.set_running_or_notify_cancel()
            self._health = (future, time.monotonic())
            threading.Thread(
                target=self._run_health, args=(future,), name=f"{self.label()}:health", daemon=True
            ).start()
            return self._health

    def _run_health(self, future: Future[bool]) -> None:
        try:
            future.set_result(bool(self.health()))
        except BaseException as exc:  # handed to whoever waits on the check
            future.set_exception(exc)

    def check_health(self, timeout: float | None = None) -> bool:
        """``health()``, bounded: :class:`HealthCheckTimeout` if it has not answered
        within ``timeout`` (default :meth:`health_timeout`) seconds of its start. A
        check still hanging from an earlier call counts from when it began."""
        return self.health_result(self.health_check(), timeout)

    def health_result(
        self, check: tuple[Future[bool], float], timeout: float | None = None
    ) -> bool:
        """The answer of ``check`` (from :meth:`health_check`), waited for as
        :meth:`check_health` does; lets a caller start several checks, then wait."""
        budget = self.health_timeout() if timeout is None else timeout
        future, began = check
        try:
            return future.result(max(0.0, began + budget - time.monotonic()))
        except FutureTimeout:
            raise HealthCheckTimeout(f"health check did not answer within {budget:g} s") from None
