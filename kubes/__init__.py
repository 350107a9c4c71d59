"""Kubernetes manifests of the built-in services: ``<service>.yaml``, multi-document YAML.

The kube service applies the ones its ``manage`` setting names.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def folder() -> Path:
    return Path(str(files(__name__)))


def names() -> list[str]:
    """The services with packaged manifests (``redis``, ``runtime``...), sorted."""
    return sorted(path.stem for path in folder().glob("*.yaml"))


def manifest(name: str) -> Path:
    """The manifest file of ``name`` (it may not exist: see :func:`names`)."""
    return folder() / f"{name}.yaml"
