"""``jaseci-like new-plugin NAME``: a plugin distribution whose tests pass as written.

>>> from pathlib import Path; import tempfile
>>> project = write_plugin("acme", Path(tempfile.mkdtemp()))
>>> project.name, (project / "jaseci_like_acme" / "plugin.py").is_file()
('jaseci-like-acme', True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jaseci_like.errors import JaseciLikeError
from jaseci_like.scaffold import templates

__all__ = ["PluginNames", "ScaffoldError", "write_plugin"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ScaffoldError(JaseciLikeError):
    """The plugin cannot be written: a name that cannot be one, or a folder in the way."""

    code = "scaffold_error"
    exit_code = 2


@dataclass(frozen=True)
class PluginNames:
    """Every name the scaffold derives from NAME (``acme``)."""

    name: str

    @property
    def dist(self) -> str:
        return "jaseci-like-" + self.name.replace("_", "-")

    @property
    def package(self) -> str:
        return f"jaseci_like_{self.name}"

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def command(self) -> str:
        return self.name.replace("_", "-") + "-hello"

    @property
    def profile(self) -> str:
        return self.name.replace("_", "-") + "-dev"

    @property
    def env_prefix(self) -> str:
        return f"JASECI_LIKE__{self.name.upper()}__"


def check_name(name: str) -> PluginNames:
    """NAME is the plugin's entry-point name, its service name and config section."""
    if not _NAME.match(name) or name.endswith("_") or "__" in name:
        raise ScaffoldError(
            f"plugin name {name!r}: use lower-case letters, digits and single underscores, "
            "starting with a letter (it names the service, its config section and "
            "its JASECI_LIKE__<NAME>__ variables), e.g. acme or acme_billing"
        )
    return PluginNames(name)


def write_plugin(name: str, directory: Path) -> Path:
    """Write the distribution of plugin ``name`` into ``directory/<dist>``; returns it.

    Refuses (:class:`ScaffoldError`) when that folder exists, so nothing is overwritten.
    """
    names = check_name(name)
    project = directory / names.dist
    if project.exists():
        raise ScaffoldError(f"{project} already exists: choose another --dir or remove it")
    files = templates.render(names)
    for relative, text in files.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return project
