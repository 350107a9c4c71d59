"""The built-in plugin that contributes the packaged profiles."""

from __future__ import annotations

from pathlib import Path

from jaseci_like_configs import folder

from jaseci_like import hookimpl


@hookimpl
def jaseci_like_profiles() -> dict[str, Path]:
    return {path.stem: path for path in sorted((folder() / "profiles").glob("*.yaml"))}
