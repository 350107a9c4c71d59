"""Configuration sources, one class per source behind one small interface.

A source holds, per section (a service name, or ``plugins`` / ``runtime``), a
nested mapping of values, and names the origin of each value it supplies.
Precedence is the order of a list in :mod:`jaseci_like.config.layers`, not ``if``s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from jaseci_like.config.secrets import mask
from jaseci_like.errors import ConfigError

ENV_PREFIX = "JASECI_LIKE__"

Doc = dict[str, Any]


class Source(Protocol):
    """One layer of configuration."""

    label: str

    def section(self, name: str) -> Mapping[str, Any]:
        """The values this source gives for section ``name`` (empty when none)."""
        ...

    def section_names(self) -> Iterable[str]:
        """Every section this source mentions."""
        ...

    def origin(self, section: str, path: tuple[str, ...]) -> str:
        """A human label of where the value at ``section`` / ``path`` came from."""
        ...

    def where(self, section: str) -> str:
        """A human label of where this source mentions ``section``."""
        ...


class MappingSource:
    """Values given in code (a service's packaged defaults, a stored glob)."""

    def __init__(self, label: str, sections: Mapping[str, Mapping[str, Any]]) -> None:
        self.label = label
        self._sections = sections

    def section(self, name: str) -> Mapping[str, Any]:
        return self._sections.get(name, {})

    def section_names(self) -> Iterable[str]:
        return self._sections.keys()

    def origin(self, section: str, path: tuple[str, ...]) -> str:
        return self.label

    def where(self, section: str) -> str:
        return self.label


class YamlFileSource(MappingSource):
    """A YAML document of sections: the user's config file or a profile."""

    def __init__(self, kind: str, path: Path) -> None:
        super().__init__(f"{kind} {path}", load_yaml_sections(path, kind))
        self.path = path


class EnvSource:
    """``JASECI_LIKE__<SECTION>__<KEY>[__<SUBKEY>...]`` environment variables.

    Values stay strings (the schema converts them), except a value that starts
    with ``[`` or ``{``, which is read as JSON so lists and mappings can be given.
    """

    label = "environment"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._sections: dict[str, Doc] = {}
        self._vars: dict[tuple[str, tuple[str, ...]], str] = {}
        problems: list[str] = []
        for var in sorted(env):
            if not var.startswith(ENV_PREFIX):
                continue
            parts = var[len(ENV_PREFIX) :].lower().split("__")
            if len(parts) < 2 or not all(parts):
                problems.append(
                    f"environment variable {var}: expected {ENV_PREFIX}<SERVICE>__<KEY>"
                )
                continue
            raw = env[var]
            value: Any = raw
            if raw.lstrip()[:1] in ("[", "{"):
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    shown = mask(raw, parts[-1])
                    problems.append(
                        f"environment variable {var}={shown!r}: not valid JSON ({exc.msg})"
                    )
                    continue
            section, path = parts[0], tuple(parts[1:])
            _set_path(self._sections.setdefault(section, {}), path, value)
            self._vars[(section, path)] = var
        if problems:
            raise ConfigError(problems)

    def section(self, name: str) -> Mapping[str, Any]:
        return self._sections.get(name, {})

    def section_names(self) -> Iterable[str]:
        return self._sections.keys()

    def origin(self, section: str, path: tuple[str, ...]) -> str:
        for n in range(len(path), 0, -1):
            var = self._vars.get((section, path[:n]))
            if var is not None:
                return f"env {var}"
        return self.label

    def where(self, section: str) -> str:
        names = sorted(var for (sec, _), var in self._vars.items() if sec == section)
        return "env " + ", ".join(names) if names else self.label


def _set_path(doc: Doc, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        child = doc.get(part)
        if not isinstance(child, dict):
            child = doc[part] = {}
        doc = child
    doc[path[-1]] = value


def load_yaml_sections(path: Path, kind: str = "file") -> dict[str, Doc]:
    """Read a YAML file of ``section: {key: value}`` mappings, or say precisely why not."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{kind} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{kind} {path}: cannot be read ({exc})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{kind} {path}{where}: YAML syntax error: {problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{kind} {path}: the top level must be a mapping of sections "
            f"(service names), not {type(doc).__name__}"
        )
    # An empty section (`redis:` with nothing under it) reads as None: no keys.
    doc = {key: {} if value is None else value for key, value in doc.items()}
    problems = [
        f"{kind} {path}: section {key!r} must be a mapping of keys, not {type(value).__name__}"
        for key, value in doc.items()
        if not isinstance(key, str) or not isinstance(value, dict)
    ]
    if problems:
        raise ConfigError(problems)
    return doc
