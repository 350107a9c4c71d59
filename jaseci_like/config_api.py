"""ConfigApi: read and change stored service configuration safely.

Every change is validated against the service's schema with all layers applied
before anything is stored; an invalid change stores nothing anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaseci_like.config.layers import EXPLICIT, Resolved, leaf_paths, validate
from jaseci_like.config.schema import known_keys, secret_paths
from jaseci_like.config.sealing import without_secrets
from jaseci_like.errors import ConfigError
from jaseci_like.hooks.memory import MemoryHook, parse_mapping, section_of
from jaseci_like.hooks.orm import OrmHook
from jaseci_like.hooks.redis import RedisHook
from jaseci_like.service import CommonService

SET_LABEL = "config_set"


def deep_merge(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` applied key by key (nested mappings merged, not replaced)."""
    out = dict(base)
    for key, value in change.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out


def nest(path: list[str], value: Any) -> dict[str, Any]:
    """``["a", "b"], 1`` -> ``{"a": {"b": 1}}``."""
    doc: Any = value
    for part in reversed(path):
        doc = {part: doc}
    assert isinstance(doc, dict)
    return doc


class ConfigApi:
    """Config of the services registered on ``hook.meta``, by glob name or service name."""

    def __init__(self, hook: MemoryHook) -> None:
        if hook.meta is None:
            raise ValueError("ConfigApi needs a hook attached to a MetaService (hook.meta)")
        self.hook = hook
        self.meta = hook.meta

    def service_class(self, name: str) -> type[CommonService]:
        """The service whose config glob (``REDIS_CONFIG``) or name (``redis``) is ``name``."""
        for service in self.meta.service_names():
            cls = self.meta.builder(service)
            if name in (cls.config_glob(), service):
                return cls
        raise ConfigError(
            f"unknown config name {name!r} (known: {', '.join(self.config_list()) or 'none'})"
        )

    def config_list(self) -> list[str]:
        """The config glob names of every registered service."""
        return sorted(self.meta.builder(n).config_glob() for n in self.meta.service_names())

    def resolve(self, name: str) -> Resolved:
        """Every layer of ``name`` merged, with origins (not validated)."""
        return self.service_class(name).resolve_config(self.hook)

    def config_get(self, name: str) -> dict[str, Any]:
        """The validated effective config of ``name`` (``enabled`` and ``quiet`` included)."""
        cls = self.service_class(name)
        return validate(cls.config_schema, self.resolve(name)).model_dump()

    def config_set(self, name: str, value: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``value`` into the stored config of ``name``, validated first.

        Returns the new effective config. Raises :class:`ConfigError` (naming key,
        value and layer) and stores nothing when the result would be invalid.
        """
        cls = self.service_class(name)
        glob = cls.config_glob()
        self._refuse_bootstrap(cls)
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"config_set {glob}: value must be a mapping of keys, not {type(value).__name__}"
            )
        given = leaf_paths(value)
        section = section_of(glob)
        defaults = cls.config_defaults(self.hook)
        layers = self.hook.layers
        # Keys the caller gives are checked strictly (no `known_keys` leniency), and
        # without the environment too: an override that hides an invalid value now
        # may be gone tomorrow, and then the stored value applies.
        for env in (False, True):
            validate(
                cls.config_schema,
                layers.resolve(
                    section, defaults, {**value, EXPLICIT: given}, stored_label=SET_LABEL, env=env
                ),
            )
        paths = secret_paths(cls.config_schema)
        effective: dict[str, Any] = {}

        def change(current: str | None) -> dict[str, Any]:
            # Runs with the stored copy locked, so concurrent config_sets of
            # different keys of one service do not lose each other's change.
            found = parse_mapping(glob, current)
            stored = (
                layers.sealer.unseal(section, found) if found else without_secrets(defaults, paths)
            )
            explicit = stored.get(EXPLICIT, [])
            candidate = deep_merge(stored, value)
            candidate[EXPLICIT] = sorted(
                set(given) | set(explicit if isinstance(explicit, list) else [])
            )
            for env in (False, True):
                full = layers.resolve(
                    section, defaults, candidate, known_keys(cls.config_schema), env=env
                )
                checked = validate(cls.config_schema, full)
            effective.update(checked.model_dump())
            # Secrets reach the stores (SQL, Redis) encrypted only.
            return layers.sealer.seal(section, candidate, paths)

        self.hook.update_glob(glob, change)
        self.hook.commit()
        return effective

    def _refuse_bootstrap(self, cls: type[CommonService]) -> None:
        # The store's own services read their config before the store is open, so a
        # value stored for them could never apply: say where to put it instead.
        own = {getattr(self.hook, "sql_service", None), getattr(self.hook, "cache_service", None)}
        name = cls.service_name()
        if name in own:
            raise ConfigError(
                f"{cls.config_glob()}: the {name} service is configured before the config "
                f"store opens, so its config cannot be stored; set it in the config file "
                f"(section {name!r}) or the environment (JASECI_LIKE__{name.upper()}__<KEY>)"
            )

    def config_refresh(self, name: str, broadcast: bool = False) -> CommonService | None:
        """Replace the service with one running its new config (see
        :meth:`MetaService.replace_service`: a new instance that does not start
        leaves the running one in place and raises :class:`ServiceStartError`).

        ``broadcast``: ask every process sharing the Redis to do the same (this one
        included, through its listener); without Redis, only this process resets.
        Returns the local instance when reset here and now, else None.
        """
        cls = self.service_class(name)
        if (
            broadcast
            and isinstance(self.hook, RedisHook)
            and self.hook.broadcast_refresh(cls.config_glob())
        ):
            return None
        hook = self.hook
        # Drop the cached copy only when a layer below holds one: with neither Redis
        # nor SQL reachable, memory is the only copy of what config_set stored.
        if isinstance(hook, RedisHook) and (
            hook.redis_client() is not None or (isinstance(hook, OrmHook) and hook.durable)
        ):
            hook.forget(cls.config_glob())
        name = cls.service_name()
        if name not in self.meta.registry.background:
            return self.meta.get_service(name, self.hook)
        # The new instance starts before the old one stops (unless two cannot run at
        # once), and so do those that kept what it gave them: nothing goes unserved.
        service = self.meta.replace_service(name, hook)
        for other in self.meta.dependents(name, dict(hook.services)):
            dependent = hook.services.get(other)
            if dependent is not None and dependent.enabled and dependent.is_running():
                self.meta.replace_service(other, hook)
        return service
