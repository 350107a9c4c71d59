"""The in-process hook: globs in a dict, and the layered config resolution every hook shares."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from jaseci_like.config.layers import ConfigLayers, Resolved
from jaseci_like.config.sealing import without_secrets
from jaseci_like.errors import GlobError

if TYPE_CHECKING:
    from jaseci_like.meta import MetaService
    from jaseci_like.service import CommonService

GlobValue = str | Mapping[str, Any] | list[Any]


def to_json(name: str, value: GlobValue) -> str:
    """The JSON text of a glob value; a string must already be JSON."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            raise GlobError(f"glob {name!r}: value is not JSON ({exc.msg})") from None
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise GlobError(f"glob {name!r}: value cannot be stored as JSON ({exc})") from None


def parse_mapping(name: str, text: str | None) -> dict[str, Any] | None:
    """The stored glob text ``text`` read as a mapping (None stays None)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GlobError(f"stored glob {name!r} is not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise GlobError(f"stored glob {name!r} holds {type(value).__name__}, not a mapping")
    return value


def section_of(glob_name: str) -> str:
    """The config section of a glob: ``"REDIS_CONFIG"`` -> ``"redis"``."""
    lowered = glob_name.lower()
    return lowered.removesuffix("_config")


class MemoryHook:
    """Globs (JSON text by name) kept in this process, plus layered config.

    ``hook.<service>`` reaches a service attached by :meth:`MetaService.build_hook`;
    ``hook.meta`` is the registry that built it.
    """

    def __init__(self, layers: ConfigLayers | None = None) -> None:
        self.layers = layers if layers is not None else ConfigLayers()
        self.meta: MetaService | None = None
        self.services: dict[str, CommonService] = {}
        self._globs: dict[str, str] = {}
        self._globs_lock = threading.Lock()
        self._update_lock = threading.RLock()
        self._resolved: dict[str, Resolved] = {}
        self._defaults: dict[str, Mapping[str, Any]] = {}

    def __getattr__(self, name: str) -> CommonService:
        # Only reached for names that are not real attributes: the attached services.
        services = self.__dict__.get("services", {})
        try:
            return services[name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute or attached service {name!r}"
            ) from None

    # -- globs ---------------------------------------------------------------
    def get_glob(self, name: str) -> str | None:
        return self._globs.get(name)

    def save_glob(self, name: str, value: GlobValue) -> None:
        text = to_json(name, value)
        with self._globs_lock:
            self._globs[name] = text

    def has_glob(self, name: str) -> bool:
        return name in self._globs

    def list_glob(self) -> list[str]:
        return sorted(self._globs)

    def update_glob(self, name: str, change: Callable[[str | None], GlobValue]) -> str:
        """Read, change and save glob ``name`` atomically; returns the new text.

        ``change`` gets the current text (None when absent); if it raises, nothing
        is saved. Atomic against other callers of this method on the same store.
        """
        with self._update_lock:
            text = to_json(name, change(self.get_glob(name)))
            self.save_glob(name, text)
            return text

    def destroy_glob(self, name: str) -> None:
        with self._globs_lock:
            self._globs.pop(name, None)

    def commit(self) -> None:
        """Make saved globs durable. Memory has nothing further to do."""

    # -- config --------------------------------------------------------------
    def stored_glob(self, name: str) -> dict[str, Any] | None:
        """The stored glob ``name`` parsed (its sealed secrets decrypted), or None when absent."""
        stored = parse_mapping(name, self.get_glob(name))
        return None if stored is None else self.layers.sealer.unseal(section_of(name), stored)

    def resolve_config(
        self,
        name: str,
        default: Mapping[str, Any],
        known_keys: Iterable[str] | None = None,
    ) -> Resolved:
        """Every layer of config glob ``name`` merged, with origins; stores defaults if absent."""
        stored = self.stored_glob(name)
        if stored is None:
            # Defaults are the lowest layer: a secret among them need not be stored.
            self.save_glob(name, without_secrets(default))
        resolved = self.layers.resolve(section_of(name), default, stored, known_keys)
        self._resolved[name] = resolved
        return resolved

    def service_glob(self, name: str, default: Mapping[str, Any]) -> dict[str, Any]:
        """The effective config ``name``: defaults stored when absent, then all layers merged.

        ``default`` is remembered as the defaults of ``name`` (see :meth:`glob_default`).
        """
        self._defaults[name] = default
        return self.resolve_config(name, default).values

    def glob_default(self, name: str) -> Mapping[str, Any] | None:
        """The defaults last given to :meth:`service_glob` for ``name``, if any."""
        return self._defaults.get(name)

    def resolved(self, name: str) -> Resolved | None:
        """The last resolution of ``name`` (origins included), if any."""
        return self._resolved.get(name)
