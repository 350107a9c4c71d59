"""Finding, filtering and loading plugins; a broken one is reported, never fatal."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from jaseci_like.config.secrets import mask_url
from jaseci_like.plugins import hookspecs
from jaseci_like.service import CommonService

if TYPE_CHECKING:
    import click

log = logging.getLogger(__name__)

LOADED = "loaded"
DENIED = "denied"
NOT_ALLOWED = "not allowed"
BROKEN = "broken"


@dataclass
class PluginInfo:
    """What became of one plugin: its status, what it gave, and why it broke."""

    name: str
    source: str
    status: str = LOADED
    error: str | None = None
    services: list[str] = field(default_factory=list)
    #: The version of the distribution that ships it; None for an in-code plugin.
    version: str | None = None


class Plugins:
    """The plugins of one runtime, filtered by an allow list and a deny list.

    ``allow`` None means every discovered plugin may load; a list names the only
    ones that may. ``deny`` wins over ``allow``.
    """

    def __init__(
        self, allow: Iterable[str] | None = None, deny: Iterable[str] = (), *, quiet: bool = False
    ) -> None:
        #: quiet: a broken plugin is recorded but not logged (a second loading of
        #: the same plugins reports it, so it is reported once).
        self.quiet = quiet
        self.allow = None if allow is None else set(allow)
        self.deny = set(deny)
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def _admitted(self, info: PluginInfo) -> bool:
        if info.name in self.deny:
            info.status = DENIED
        elif self.allow is not None and info.name not in self.allow:
            info.status = NOT_ALLOWED
        return info.status == LOADED

    def discover(self, group: str = hookspecs.PROJECT) -> None:
        """Load every admitted plugin of the entry-point group."""
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            if ep.name in self.infos:
                continue
            source = f"{ep.value} ({ep.dist.name if ep.dist else 'unknown distribution'})"
            info = PluginInfo(ep.name, source, version=ep.dist.version if ep.dist else None)
            self.infos[ep.name] = info
            if self._admitted(info):
                self._guard(info, partial(self._register_entry_point, ep))

    def broken(self) -> list[PluginInfo]:
        """The plugins that failed to load or whose hooks failed (``--strict``)."""
        return [info for info in self.infos.values() if info.status == BROKEN]

    def register(self, name: str, plugin: object) -> PluginInfo:
        """Register an in-code plugin (a module or object with hook implementations)."""
        info = PluginInfo(name, repr(plugin))
        self.infos[name] = info
        if self._admitted(info):
            self._guard(info, lambda: self._register(plugin, name))
        return info

    def _register_entry_point(self, ep: EntryPoint) -> None:
        self._register(ep.load(), ep.name)

    def _register(self, plugin: object, name: str) -> None:
        self.pm.register(plugin, name=name)
        # A hook implementation with no matching spec (a typo) is an error now,
        # not a silent no-op later. Earlier plugins passed, so it is this one's.
        self.pm.check_pending()

    def _guard(self, info: PluginInfo, action: Callable[[], object]) -> bool:
        try:
            action()
        except Exception as exc:  # a broken plugin is reported by name, the rest go on
            self._broken(info, exc)
            return False
        return True

    def _broken(self, info: PluginInfo, exc: BaseException) -> None:
        info.status = BROKEN
        # One line: it is a cell of the `plugins` table (pluggy's messages span lines).
        info.error = " ".join(mask_url(f"{type(exc).__name__}: {exc}").split())
        if not self.quiet:
            log.error("plugin %r is broken and was not loaded: %s", info.name, info.error)
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin, name=info.name)

    def _call(self, hook_name: str, **kwargs: Any) -> list[tuple[PluginInfo, Any]]:
        """Call one hook per plugin so one failure cannot hide the others' results."""
        results = []
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            info = self.infos.get(impl.plugin_name)
            if info is None or info.status != LOADED:
                continue
            try:
                result = impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:  # same as above: report by name, keep going
                self._broken(info, exc)
                continue
            results.append((info, result))
        return results

    def services(self) -> list[tuple[PluginInfo, type[CommonService]]]:
        """Every checked service class, with the plugin that gave it."""
        out: list[tuple[PluginInfo, type[CommonService]]] = []
        for info, classes in self._call("jaseci_like_services"):
            checked = []
            try:
                for cls in classes or ():
                    if not (isinstance(cls, type) and issubclass(cls, CommonService)):
                        raise TypeError(f"{cls!r} is not a CommonService subclass")
                    cls.check_class()
                    checked.append(cls)
            except Exception as exc:  # a bad declaration breaks only its own plugin
                self._broken(info, exc)
                continue
            info.services = [cls.service_name() for cls in checked]
            out.extend((info, cls) for cls in checked)
        return out

    def tasks(self) -> dict[str, Callable[..., Any]]:
        """Every plugin's named tasks; a name given twice keeps the first, with a warning."""
        found: dict[str, Callable[..., Any]] = {}
        for info, tasks in self._call("jaseci_like_tasks"):
            for name, func in (tasks or {}).items():
                if name in found:
                    log.warning("task %r of plugin %r ignored: already provided", name, info.name)
                    continue
                if not callable(func):
                    self._broken(info, TypeError(f"task {name!r} is not callable"))
                    break
                found[name] = func
        return found

    def profiles(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for info, profiles in self._call("jaseci_like_profiles"):
            for name, path in (profiles or {}).items():
                if name in found:
                    log.warning("profile %r of plugin %r replaces an earlier one", name, info.name)
                found[name] = Path(path)
        return found

    def user_created(self, session: Any, user: Any) -> list[str]:
        """The lines every plugin prints for a user ``users create`` just made."""
        lines: list[str] = []
        for _, said in self._call("jaseci_like_user_created", session=session, user=user):
            lines.extend(str(line) for line in said or ())
        return lines

    def add_commands(self, cli: click.Group) -> None:
        self._call("jaseci_like_commands", cli=cli)
