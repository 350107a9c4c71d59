"""Kubernetes manifests grouped by kind, the shape ``CommonService.kube`` holds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from jaseci_like.errors import ConfigError

Manifests = dict[str, list[dict[str, Any]]]


def group_by_kind(documents: Iterable[Any], where: str) -> Manifests:
    """``{Kind: [manifest, ...]}`` from parsed YAML documents (empty ones skipped)."""
    grouped: Manifests = {}
    for index, doc in enumerate(documents):
        if doc is None:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
            raise ConfigError(f"{where}: document {index + 1} is not a manifest with a 'kind'")
        grouped.setdefault(doc["kind"], []).append(doc)
    return grouped


def load_manifests(path: Path) -> Manifests:
    """Read a multi-document YAML file of manifests, grouped by kind."""
    try:
        text = path.read_text(encoding="utf-8")
        return group_by_kind(yaml.safe_load_all(text), str(path))
    except OSError as exc:
        raise ConfigError(f"kube manifests {path}: cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"kube manifests {path}: YAML syntax error ({exc})") from None
    except RecursionError:
        raise ConfigError(f"kube manifests {path}: nested too deeply to be a manifest") from None
