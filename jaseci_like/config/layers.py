"""Layered configuration: which source wins, and where each value came from.

Lowest first: a service's packaged defaults, the chosen profile, the user's file,
values stored with ``config_set``, and the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from jaseci_like.config.schema import is_freeform, secret_paths
from jaseci_like.config.sealing import Sealer
from jaseci_like.config.secrets import (
    mask,
    mask_url,
    printable,
    remember,
    secret_strings,
)
from jaseci_like.config.sources import EnvSource, Source, YamlFileSource, json_or_text
from jaseci_like.errors import ConfigError

log = logging.getLogger(__name__)

Path_ = tuple[str, ...]

DEFAULTS = "default"
STORED = "stored"
#: Key of a stored config glob listing the dotted keys set explicitly (config_set).
#: A stored value counts as a layer where it differs from the packaged default, or
#: where it was set explicitly, even to the default's value.
EXPLICIT = "$set"


@dataclass(frozen=True)
class Resolved:
    """The merged (not yet validated) values of one section, with their origins."""

    section: str
    values: dict[str, Any]
    origins: dict[Path_, str] = field(default_factory=dict)

    def origin_of(self, path: Iterable[str]) -> str:
        """Origin of the value at ``path`` (or of the nearest mapping holding it)."""
        key = tuple(path)
        # The key itself or, for a mapping whose leaves came from several layers, the
        # highest of them: layers merge lowest first, and a merge re-inserts what it
        # overrides, so the last entry at or below the key is the one that counts.
        found: str | None = None
        for leaf, origin in self.origins.items():
            if leaf[: len(key)] == key:
                found = origin
        if found is not None:
            return found
        for n in range(len(key) - 1, 0, -1):
            above = self.origins.get(key[:n])
            if above is not None:
                return above
        return DEFAULTS

    def leaves(self) -> list[tuple[Path_, Any, str]]:
        """Every leaf value as (path, value, origin), in a stable order."""
        out: list[tuple[Path_, Any, str]] = []
        _walk(self.values, (), out, self)
        return out


def _walk(doc: Mapping[str, Any], prefix: Path_, out: list[Any], res: Resolved) -> None:
    for key in sorted(doc):
        value = doc[key]
        path = (*prefix, key)
        if isinstance(value, Mapping) and value:
            _walk(value, path, out, res)
        else:
            out.append((path, value, res.origin_of(path)))


def _merge(
    into: dict[str, Any],
    layer: Mapping[str, Any],
    prefix: Path_,
    origins: dict[Path_, str],
    source: Source | None,
    section: str,
    label: str,
) -> None:
    for key, value in layer.items():
        path = (*prefix, str(key))
        current = into.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge(current, value, path, origins, source, section, label)
            continue
        into[key] = _copy(value)
        for known in [p for p in origins if p[: len(path)] == path]:
            del origins[known]
        origins[path] = source.origin(section, path) if source is not None else label


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _diff(stored: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``stored`` that differs from ``defaults`` (leaf by leaf)."""
    out: dict[str, Any] = {}
    for key, value in stored.items():
        base = defaults.get(key, _MISSING)
        if isinstance(value, Mapping) and isinstance(base, Mapping):
            inner = _diff(value, base)
            if inner:
                out[key] = inner
        elif value != base:
            out[key] = value
    return out


_MISSING = object()


def _overrides(
    section: str, stored: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """What the stored layer contributes: values that differ from the defaults, plus
    the explicitly set ones (listed under ``$set``) whatever their value."""
    values = {k: v for k, v in stored.items() if k != EXPLICIT}
    out = _diff(values, defaults)
    explicit = stored.get(EXPLICIT, [])
    if not isinstance(explicit, list) or not all(isinstance(p, str) for p in explicit):
        log.warning("%s: ignoring a malformed %r list in the stored config", section, EXPLICIT)
        return out
    for dotted in explicit:
        path = dotted.split(".")
        value: Any = values
        for part in path:
            value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING:
            continue
        target = out
        for part in path[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[path[-1]] = _copy(value)
    return out


def leaf_paths(doc: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every leaf of a nested mapping: ``{"a": {"b": 1}}`` -> ``["a.b"]``."""
    out: list[str] = []
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(leaf_paths(value, f"{path}."))
        else:
            out.append(path)
    return out


class ConfigLayers:
    """The sources of configuration of one runtime, in precedence order."""

    def __init__(
        self,
        *,
        file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        profile: tuple[str, Path] | None = None,
    ) -> None:
        self.file = YamlFileSource("file", file) if file is not None else None
        self.env = EnvSource(environ)
        #: Seals the secrets of stored config, with the key of this environment.
        self.sealer = Sealer.from_environ(os.environ if environ is None else environ)
        self.profile_name = profile[0] if profile else None
        self.profile = YamlFileSource(f"profile {profile[0]}", profile[1]) if profile else None

    def with_profile(self, name: str, path: Path) -> ConfigLayers:
        """A copy with the profile layer set (profiles come from plugins)."""
        twin = ConfigLayers.__new__(ConfigLayers)
        twin.__dict__.update(self.__dict__)
        twin.profile_name = name
        twin.profile = YamlFileSource(f"profile {name}", path)
        return twin

    def _below_store(self) -> list[Source]:
        return [s for s in (self.profile, self.file) if s is not None]

    def sources(self) -> list[Source]:
        """Every source other than defaults and the store, lowest first."""
        return [*self._below_store(), self.env]

    def section_names(self) -> set[str]:
        """Every section some source mentions."""
        return {name for source in self.sources() for name in source.section_names()}

    def resolve(
        self,
        section: str,
        defaults: Mapping[str, Any],
        stored: Mapping[str, Any] | None,
        known_keys: Iterable[str] | None = None,
        stored_label: str = STORED,
        env: bool = True,
    ) -> Resolved:
        """Merge every layer of ``section``; ``stored`` counts where it differs from defaults.

        Stored keys that the schema no longer knows (left by an older release) are
        ignored with a warning rather than breaking the service. ``env=False``: the
        layers below the environment only (what applies once an override is gone).
        """
        values: dict[str, Any] = {}
        origins: dict[Path_, str] = {}
        _merge(values, defaults, (), origins, None, section, DEFAULTS)
        for source in self._below_store():
            _merge(values, source.section(section), (), origins, source, section, source.label)
        if stored:
            overrides = _overrides(section, stored, defaults)
            if known_keys is not None:
                known = set(known_keys)
                for key in [k for k in overrides if k not in known]:
                    log.warning("%s: ignoring stored key %r, no longer in its schema", section, key)
                    del overrides[key]
            _merge(values, overrides, (), origins, None, section, stored_label)
        if env:
            _merge(values, self.env.section(section), (), origins, self.env, section, "env")
        return Resolved(section, values, origins)


def validate(schema: type[BaseModel], resolved: Resolved) -> BaseModel:
    """Validate ``resolved`` with ``schema``; every problem names key, value and layer.

    A free-form schema has no types to convert the text of environment variables
    with, so there each such value is read as JSON (a bare string when it is not).
    """
    values = _env_as_json(resolved) if is_freeform(schema) else resolved.values
    # Whatever happens next, this config's secrets are masked in every message.
    remember(values, secret_paths(schema))
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, resolved, schema)) from None


def _env_as_json(resolved: Resolved) -> dict[str, Any]:
    values: dict[str, Any] = _copy(resolved.values)
    for path, value, origin in resolved.leaves():
        if isinstance(value, str) and EnvSource.gave(origin):
            target = values
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = json_or_text(value)
    return values


def describe_errors(
    exc: ValidationError, resolved: Resolved, schema: type[BaseModel] | None = None
) -> list[str]:
    """One line per problem, naming key, value and layer; secrets masked (by the
    schema's markers, by key name, URL passwords) in the value and in the message."""
    paths = secret_paths(schema) if schema is not None else None
    problems = []
    for err in exc.errors(include_url=False):
        path = tuple(str(p) for p in err["loc"])
        dotted = printable(".".join((resolved.section, *path)))
        if err["type"] == "missing":
            problems.append(f"{dotted}: required, but no layer sets it")
            continue
        given = err.get("input")
        value = printable(repr(mask(given, path[-1] if path else "", paths, path)))
        origin = printable(resolved.origin_of(path))
        if err["type"] == "extra_forbidden":
            problems.append(f"{dotted} = {value} (from {origin}): unknown key")
            continue
        # A validator's message may repeat what it was given.
        rooted: Any = given
        for part in reversed(path):
            rooted = {part: rooted}
        why = mask_url(err["msg"], secret_strings(rooted, paths))
        problems.append(f"{dotted} = {value} (from {origin}): {printable(why, 1000)}")
    return problems
