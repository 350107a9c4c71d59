"""Each service's effective config, one entry per leaf key with the layer it came
from, secrets masked: what ``jaseci-like config show --origin`` prints, as data."""

from __future__ import annotations

import json
from typing import Any

from jaseci_like_services.api.dto.v1.system import ConfigEntryV1, ServiceConfigV1

from jaseci_like import ConfigApi
from jaseci_like.config.schema import secret_paths
from jaseci_like.config.secrets import mask, mask_url
from jaseci_like.errors import JaseciLikeError

#: The origin of a key that no layer sets: the schema's own default fills it.
SCHEMA_DEFAULT = "schema default"


def _leaves(doc: dict[str, Any], prefix: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key in sorted(doc):
        value, path = doc[key], (*prefix, str(key))
        out.extend(_leaves(value, path) if isinstance(value, dict) and value else [(path, value)])
    return out


def _has_path(doc: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return True


def _plain(value: Any) -> Any:
    """JSON-ready: a value of another type (a path, a duration) as its text."""
    return json.loads(json.dumps(value, default=str))


def service_config(configs: ConfigApi, name: str) -> ServiceConfigV1:
    """One service's entries. Blocking: stored layers are read from the store."""
    cls = configs.service_class(name)
    section = cls.service_name()
    resolved = configs.resolve(name)
    error = None
    try:
        effective = configs.config_get(name)
    except JaseciLikeError as exc:  # shown beside the values, as `config show` would refuse
        effective, error = resolved.values, mask_url(str(exc))
    masked = mask(effective, paths=secret_paths(cls.config_schema))
    entries = [
        ConfigEntryV1(
            key=".".join((section, *path)),
            value=_plain(value),
            origin=resolved.origin_of(path) if _has_path(resolved.values, path) else SCHEMA_DEFAULT,
        )
        for path, value in _leaves(masked, ())
    ]
    return ServiceConfigV1(service=section, entries=entries, error=error)


def all_configs(configs: ConfigApi, names: list[str]) -> list[ServiceConfigV1]:
    return [service_config(configs, name) for name in names]
