"""MetaService: the registry of service builders, background instances and contexts."""

from __future__ import annotations

import graphlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from jaseci_like.errors import (
    ContextNotFound,
    DependencyError,
    DuplicateService,
    ServiceNotFound,
    ServiceStartError,
)
from jaseci_like.hooks.memory import MemoryHook
from jaseci_like.loop import RuntimeLoop
from jaseci_like.master import Master, SuperMaster
from jaseci_like.service import CommonService

if TYPE_CHECKING:
    from jaseci_like.cluster.lease import Leadership
    from jaseci_like.supervisor import Supervisor

log = logging.getLogger(__name__)
S = TypeVar("S", bound=CommonService)


@dataclass
class Registry:
    """What a group of ``MetaService`` handles share: builders, instances, contexts."""

    builders: dict[str, type[CommonService]] = field(default_factory=dict)
    background: dict[str, CommonService] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: One lock per service name, so building one service never waits on another.
    build_locks: dict[str, threading.RLock] = field(default_factory=dict)
    #: Names in the order their background instances started (stop runs it backwards).
    order: list[str] = field(default_factory=list)
    #: The event loop async services share (started on first use).
    loop: RuntimeLoop = field(default_factory=RuntimeLoop)
    #: Named background tasks contributed by plugins (the task service runs them).
    tasks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: The supervisor of the runtime using this registry, if any (services may report
    #: what it knows, e.g. an API's readiness probe).
    supervisor: Supervisor | None = None
    #: True once the services of the installed plugins are registered here (by a
    #: Runtime, or by the shared registry itself on first need, as the seed's is).
    plugins_loaded: bool = False
    #: This runtime's standing for the system's leader lease, once it joined a
    #: cluster (None: alone, so it does every singleton duty itself).
    leadership: Leadership | None = None


_SHARED = Registry()
_building = threading.local()


class MetaService:
    """Builds and keeps services. Every ``MetaService()`` shares one registry (the seed's
    process-wide handler); ``MetaService(Registry())`` or :meth:`isolated` gives its own.

    >>> meta = MetaService.isolated()
    >>> meta.add_service_builder("svc", CommonService)
    >>> meta.get_service("svc") is meta.get_service("svc")
    True
    """

    def __init__(self, context: Registry | None = None) -> None:
        self.registry = _SHARED if context is None else context
        # Bound here so the warm path of get_service is one dict lookup.
        self._background = self.registry.background

    @property
    def loop(self) -> RuntimeLoop:
        """The event loop shared by the async services of this registry."""
        return self.registry.loop

    @classmethod
    def isolated(cls) -> MetaService:
        """A registry of its own, for tests and for two runtimes in one process."""
        return cls(Registry())

    # -- contexts ----------------------------------------------------------------
    def add_context(self, name: str, cls: type[Any], *args: Any, **kwargs: Any) -> None:
        """Remember how to build context ``name`` (e.g. ``"hook"``); replaces an earlier one."""
        with self.registry.lock:
            self.registry.contexts[name] = {"class": cls, "args": args, "kwargs": kwargs}

    def get_context(self, name: str) -> dict[str, Any]:
        """``{"class": cls, "args": args, "kwargs": kwargs}`` of context ``name``.

        An unknown name raises :class:`ContextNotFound` (a ``LookupError``), where the
        seed returned None: a typo fails where it is made, not at a later ``["class"]``.
        """
        try:
            return self.registry.contexts[name]
        except KeyError:
            raise ContextNotFound(
                f"no context named {name!r} (known: {', '.join(self.registry.contexts) or 'none'})"
            ) from None

    def build_context(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """An instance of context ``name``; given arguments replace the stored ones."""
        ctx = self.get_context(name)
        return ctx["class"](*(args or ctx["args"]), **{**ctx["kwargs"], **kwargs})

    # -- builders ------------------------------------------------------------------
    def add_service_builder(self, name: str, cls: type[CommonService]) -> None:
        """Register ``cls`` under ``name``; a second builder for one name is refused."""
        with self.registry.lock:
            current = self.registry.builders.get(name)
            if current is not None:
                raise DuplicateService(
                    f"service {name!r} is already provided by {current.__module__}."
                    f"{current.__qualname__}; refusing {cls.__module__}.{cls.__qualname__}"
                )
            self.registry.builders[name] = cls

    def has_service_builder(self, name: str) -> bool:
        return name in self.registry.builders

    def service_names(self) -> list[str]:
        return list(self.registry.builders)

    def builder(self, name: str) -> type[CommonService]:
        try:
            return self.registry.builders[name]
        except KeyError:
            pass
        if self._load_plugins():
            return self.builder(name)
        known = ", ".join(sorted(self.registry.builders)) or "none"
        raise ServiceNotFound(f"no service named {name!r} (known: {known})")

    def _load_plugins(self) -> bool:
        """On the shared registry, register the installed plugins' services the first
        time they are needed (the seed's ``MetaService()`` comes with its services);
        True when that happened now. Isolated registries get only what is added."""
        if self.registry is not _SHARED or self.registry.plugins_loaded:
            return False
        from jaseci_like.runtime import load_plugins  # the runtime imports this module

        with self.registry.lock:
            if self.registry.plugins_loaded:
                return False
            load_plugins(self)
        return True

    # -- instances -------------------------------------------------------------------
    def build_service(
        self, name: str, background: bool, *args: Any, **kwargs: Any
    ) -> CommonService:
        """Build service ``name`` with ``args`` and start it (``start`` never raises).

        ``background=True`` keeps it as the process-wide instance, stopping any
        instance it replaces; ``False`` gives a disposable one the caller owns.
        """
        cls = self.builder(name)
        stack: list[str] = getattr(_building, "stack", None) or []
        if name in stack:
            cycle = " -> ".join([*stack[stack.index(name) :], name])
            raise DependencyError(f"dependency cycle: {cycle}")
        _building.stack = [*stack, name]
        try:
            service = cls(*args, **kwargs)
            if background:
                self._keep(name, service)
            service.start()
            if background:
                self._started(name, service)
        finally:
            _building.stack = stack
        return service

    def _keep(self, name: str, service: CommonService) -> None:
        with self.registry.lock:
            old = self.registry.background.get(name)
            self.registry.background[name] = service
            # Only a replaced instance can be listed; testing first keeps the common
            # case (a first build) O(1), so starting n services stays linear in n.
            if old is not None and name in self.registry.order:
                self.registry.order.remove(name)
        if old is not None and old is not service:
            old.stop()

    def _started(self, name: str, service: CommonService) -> None:
        # Recorded once started, so a dependency its start pulled in comes first.
        # _keep took the name out of `order`, and only the instance that is still
        # the background one gets here to put it back: no membership scan needed.
        with self.registry.lock:
            if self.registry.background.get(name) is service:
                self.registry.order.append(name)

    @overload
    def get_service(self, name: type[S], *args: Any) -> S: ...
    @overload
    def get_service(self, name: str, *args: Any) -> CommonService: ...
    def get_service(self, name: str | type[S], *args: Any) -> CommonService | S:
        """The background instance of ``name``, built on first use, exactly once.

        ``name`` may be a service class (``get_service(DbService)``): the instance
        registered under its name, typed as that class (:class:`ServiceNotFound` if
        the one registered under that name is another class).

        ``args`` go to the constructor on first use (``get_service("redis", hook)``).
        No ``**kwargs`` here, unlike the seed: in CPython every call of a function
        that takes them allocates a dict, which would make this warm path cost about
        a third more. Build with keyword arguments through :meth:`build_service`.
        """
        try:
            return self._background[name]  # type: ignore[index]
        except KeyError:
            if isinstance(name, type):
                return self._typed(name, args)
            return self._build_once(name, args)

    def _typed(self, cls: type[S], args: tuple[Any, ...]) -> S:
        key = cls.service_name()
        found = self._background.get(key) or self._build_once(key, args)
        if not isinstance(found, cls):
            raise ServiceNotFound(
                f"service {key!r} is a {type(found).__name__}, not a {cls.__name__} "
                f"(look it up by name, or register {cls.__name__})"
            )
        return found

    @overload
    async def aget_service(self, name: type[S], *args: Any) -> S: ...
    @overload
    async def aget_service(self, name: str, *args: Any) -> CommonService: ...
    async def aget_service(self, name: str | type[S], *args: Any) -> CommonService | S:
        """:meth:`get_service` for a coroutine: a running instance is returned at once;
        building one (which may wait on the runtime's loop, maybe this very loop)
        runs in a worker thread."""
        found = self._background.get(name if isinstance(name, str) else name.service_name())
        if found is not None and (isinstance(name, str) or isinstance(found, name)):
            return found
        import asyncio

        return await asyncio.to_thread(self.get_service, name, *args)

    def _build_once(self, name: str, args: tuple[Any, ...]) -> CommonService:
        with self.registry.lock:
            lock = self.registry.build_locks.setdefault(name, threading.RLock())
        with lock:
            found = self._background.get(name)
            if found is not None:
                return found
            return self.build_service(name, True, *args)

    def replace_service(self, name: str, hook: MemoryHook) -> CommonService:
        """A new instance of ``name`` with its config read again, in place of the running
        one: started first and swapped in once RUNNING, then the old one is stopped,
        so what it serves is never unavailable meanwhile.

        An ``exclusive`` service, or one that is not running, is reset in place. If the
        new instance does not start, the running one is kept and
        :class:`ServiceStartError` says why.
        """
        old = self._background.get(name)
        if old is None:
            return self.get_service(name, hook)
        if old.exclusive or not old.is_running():
            return old.reset(hook)
        new = self.builder(name)(hook)
        new.start(hook)
        if not new.is_running():
            from jaseci_like.supervisor import describe_failure  # it imports this module

            why = new.error
            new.stop()
            raise ServiceStartError(
                f"{name}: its new instance did not start, so the running one is kept: "
                f"{describe_failure(why, new) or new.state.name}"
            )
        with self.registry.lock:
            current = self._background.get(name) is old
            if current:
                self._background[name] = new
        if not current:  # replaced meanwhile by someone else: theirs stays
            new.stop()
            return self._background[name]
        if hook.services.get(name) is old:
            hook.services[name] = new
        old.stop()
        return new

    def dependents(self, name: str, services: Mapping[str, CommonService]) -> list[str]:
        """Those of ``services`` that must be restarted when ``name`` is: the ones that
        require it, directly or through another such one, except ``rebinds`` services
        (they find the new instance by themselves), in start order."""
        found: list[str] = []
        changed = {name}
        while True:
            more = [
                n
                for n, s in services.items()
                if n not in found and n != name and not s.rebinds and changed & set(s.requires)
            ]
            if not more:
                break
            found.extend(more)
            changed.update(more)
        return [n for level in self.start_levels(found) for n in level if n in found]

    def stop_all(self, timeout: float = 5.0) -> list[CommonService]:
        """Stop every background service, dependents first, within ``timeout`` in all.

        Returns the services that are not STOPPED afterwards (failed or too slow).
        """
        deadline = time.monotonic() + timeout
        with self.registry.lock:
            names = list(reversed(self.registry.order))
        left = []
        for name in names:
            service = self._background.get(name)
            if service is None:
                continue
            service.stop(timeout=max(0.0, deadline - time.monotonic()))
            if service.daemon_names():
                left.append(service)
        # Last, once nothing async is left: the shared loop.
        self.registry.loop.stop(max(0.1, deadline - time.monotonic()))
        return left

    def clear(self, timeout: float = 5.0) -> None:
        """Stop every background service and forget them (builders stay)."""
        self.stop_all(timeout)
        with self.registry.lock:
            self.registry.background.clear()
            self.registry.order.clear()

    # -- hook ---------------------------------------------------------------------------
    def build_hook(self, *args: Any, start: bool = True, **kwargs: Any) -> MemoryHook:
        """The ``hook`` context built, ``hook.meta`` set, every service attached.

        Services start in dependency order; independent ones start concurrently.
        """
        self._load_plugins()
        if "hook" in self.registry.contexts:
            hook = self.build_context("hook", *args, **kwargs)
        else:
            hook = MemoryHook(*args, **kwargs)
        if not isinstance(hook, MemoryHook):
            raise TypeError(f"the hook context built {type(hook).__name__}, not a MemoryHook")
        hook.meta = self
        if start:
            self.start_services(hook)
        return hook

    def build_master(self, *args: Any, h: MemoryHook | None = None, **kwargs: Any) -> Any:
        """The ``master`` context built, its ``_h`` a hook from :meth:`build_hook`
        (or ``h``). Without a registered one, :class:`~jaseci_like.master.Master`."""
        return self._build_with_hook("master", Master, h, args, kwargs)

    def build_super_master(self, *args: Any, h: MemoryHook | None = None, **kwargs: Any) -> Any:
        """As :meth:`build_master`, for the ``super_master`` context."""
        return self._build_with_hook("super_master", SuperMaster, h, args, kwargs)

    def _build_with_hook(
        self,
        name: str,
        default: type[Master],
        h: MemoryHook | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        with self.registry.lock:
            if name not in self.registry.contexts:
                self.add_context(name, default)
        hook = h if h is not None else self.build_hook()
        cls = self.get_context(name)["class"]
        if _accepts(cls, "h"):
            return self.build_context(name, *args, h=hook, **kwargs)
        built = self.build_context(name, *args, **kwargs)
        built._h = hook
        return built

    def start_services(self, hook: MemoryHook, names: Iterable[str] | None = None) -> None:
        """Build and start ``names`` (default: all) in dependency order onto ``hook``."""
        levels = self.start_levels(names)
        for level in levels:
            self._start_level(hook, level)

    def _start_level(self, hook: MemoryHook, level: Sequence[str]) -> None:
        def one(name: str) -> None:
            hook.services[name] = self.get_service(name, hook)

        if len(level) == 1 or not any(self._slow_start(n) for n in level):
            for name in level:
                one(name)
            return
        errors: list[BaseException] = []

        def guarded(name: str) -> None:
            try:
                one(name)
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)

        threads = [
            threading.Thread(target=guarded, args=(n,), name=f"start:{n}", daemon=True)
            for n in level
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _slow_start(self, name: str) -> bool:
        # Services that wait on a server at start say so; only those are worth a thread.
        return self.builder(name).start_blocks

    def start_levels(self, names: Iterable[str] | None = None) -> list[list[str]]:
        """Topological levels of ``names`` and what they need: each level needs only
        earlier ones. A cycle or a dependency nobody provides is a DependencyError."""
        wanted = list(self.registry.builders) if names is None else list(names)
        needs: dict[str, tuple[str, ...]] = {}
        todo = list(wanted)
        while todo:
            name = todo.pop()
            if name in needs:
                continue
            cls = self.builder(name)
            for dep in cls.requires:
                if dep not in self.registry.builders:
                    raise DependencyError(
                        f"service {name!r} needs {dep!r}, which no plugin provides"
                    )
                todo.append(dep)
            needs[name] = cls.requires
        # graphlib gives the levels: what get_ready() hands out together needs only
        # what was handed out before.
        sorter = graphlib.TopologicalSorter(needs)
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            # The cycle as graphlib names it runs from a dependency to its dependent;
            # reversed, each name is followed by one it requires.
            cycle = " -> ".join(reversed(exc.args[1]))
            raise DependencyError(f"dependency cycle: {cycle}") from None
        levels: list[list[str]] = []
        while sorter.is_active():
            level = list(sorter.get_ready())
            levels.append(level)
            sorter.done(*level)
        return levels


def _accepts(cls: type[Any], keyword: str) -> bool:
    """True when ``cls(...)`` takes the keyword argument ``keyword``."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in params)
