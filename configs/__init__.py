"""Packaged default configuration of the built-in services, and the profiles."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml


def folder() -> Path:
    return Path(str(files(__name__)))


def defaults(service: str) -> dict[str, Any]:
    """The packaged defaults of a built-in service (``configs/<service>.yaml``)."""
    doc = yaml.safe_load((folder() / f"{service}.yaml").read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise TypeError(f"configs/{service}.yaml must hold a mapping")
    return doc
