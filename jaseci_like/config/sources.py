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

from jaseci_like.config.secrets import mask, printable
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
    A service without a schema has nothing to convert them, so its values are
    read as JSON when validated (:func:`jaseci_like.config.layers.validate`).
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
                except (json.JSONDecodeError, RecursionError) as exc:
                    shown = printable(repr(mask(raw, parts[-1])))
                    why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                    problems.append(f"environment variable {var}={shown}: not valid JSON ({why})")
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

    @classmethod
    def gave(cls, origin: str) -> bool:
        """True when ``origin`` (as :meth:`origin` names it) is the environment."""
        return origin == cls.label or origin.startswith("env ")

    def where(self, section: str) -> str:
        names = sorted(var for (sec, _), var in self._vars.items() if sec == section)
        return "env " + ", ".join(names) if names else self.label


def json_or_text(text: str) -> Any:
    """``text`` read as JSON (``5``, ``true``, ``null``, ``"a"``, lists, mappings), or
    ``text`` itself when it is not JSON: how a free-form key's value is given as text."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text


def _set_path(doc: Doc, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        child = doc.get(part)
        if not isinstance(child, dict):
            child = doc[part] = {}
        doc = child
    doc[path[-1]] = value


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``, except that a key given twice in one mapping is an error
    (PyYAML would keep the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: construct_mapping below says so
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, from a PyYAML error (a reader error has no marks, only a position)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f" at character {exc.position}: {exc.reason}: {exc.character!r}"
    where = ""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
    return f"{where}: {getattr(exc, 'problem', None) or 'invalid YAML'}"


#: Most characters a config file may have.
MAX_FILE_CHARS = 1 << 20
#: Most values (mappings, lists, keys and scalars) a config file may hold, aliases
#: counted each time they are used: a few nested aliases could otherwise expand to
#: billions of values when the layers are merged (a "billion laughs" file).
MAX_VALUES = 100_000


def _too_many_values(doc: Any, limit: int = MAX_VALUES) -> bool:
    count = 0
    stack = [doc]
    while stack:
        count += 1
        if count > limit:
            return True
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_unicode(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The path of the first key or text that is not valid Unicode (a lone surrogate,
    which YAML's "\\uD800" escape can make), or None."""
    if isinstance(value, str):
        return None if _is_unicode(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            name = key if isinstance(key, str) and key.isprintable() else ascii(key)
            if isinstance(key, str) and not _is_unicode(key):
                return (*path, name)
            found = _not_unicode(item, (*path, name))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _not_unicode(item, (*path, str(index)))
            if found is not None:
                return found
    return None


def load_yaml_sections(path: Path, kind: str = "file") -> dict[str, Doc]:
    """Read a YAML file of ``section: {key: value}`` mappings, or say precisely why not."""
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read(MAX_FILE_CHARS + 1)  # bounded: /dev/zero never ends
    except FileNotFoundError:
        raise ConfigError(f"{kind} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{kind} {path}: cannot be read ({exc})") from None
    if len(text) > MAX_FILE_CHARS:
        raise ConfigError(f"{kind} {path}: more than {MAX_FILE_CHARS} characters")
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{kind} {path}: YAML syntax error{_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{kind} {path}: nested too deeply to be a config file") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{kind} {path}: the top level must be a mapping of sections "
            f"(service names), not {type(doc).__name__}"
        )
    if _too_many_values(doc):
        raise ConfigError(
            f"{kind} {path}: more than {MAX_VALUES} values (aliases counted each time "
            "they are used); a config file needs far fewer"
        )
    bad = _not_unicode(doc)
    if bad is not None:
        raise ConfigError(
            f"{kind} {path}: {'.'.join(bad)}: not valid Unicode text "
            "(a lone surrogate such as \\uD800 cannot be used)"
        )
    # An empty section (`redis:` with nothing under it) reads as None: no keys.
    doc = {key: {} if value is None else value for key, value in doc.items()}
    problems = [
        f"{kind} {path}: section {key!r}: a section name must be text (a service name)"
        for key in doc
        if not isinstance(key, str)
    ]
    problems += [
        f"{kind} {path}: section {key!r} must be a mapping of keys, not {type(value).__name__}"
        for key, value in doc.items()
        if isinstance(key, str) and not isinstance(value, dict)
    ]
    if problems:
        raise ConfigError(problems)
    return doc
