"""Manifests checked against the real Kubernetes schemas (the kubernetes-validate package).

Strict: an unknown field is an error, so a misspelt key is caught here rather than
silently dropped by the API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jaseci_like_services.kube.errors import KubeManifestInvalid


def _library() -> Any:
    """kubernetes-validate, imported on first use (it loads jsonschema); it is untyped."""
    from kubernetes_validate import utils  # type: ignore[import-untyped]

    return utils


@cache
def known_versions() -> tuple[str, ...]:
    """The Kubernetes versions (``major.minor``) whose schemas are installed, oldest first."""
    utils = _library()
    return tuple(str(utils.major_minor(v)) for v in utils.all_versions())


def newest_version() -> str:
    return known_versions()[-1]


def check_schema(manifest: Mapping[str, Any], where: str, version: str) -> None:
    """Raise :class:`KubeManifestInvalid` naming ``where`` and the schema problem.

    The problem names the path and what is wrong; for a Secret it never repeats the
    offending value.
    """
    library = _library()
    try:
        library.validate(dict(manifest), version, strict=True)
    except library.ValidationError as exc:
        path = ".".join(str(part) for part in exc.path) or "(top level)"
        if manifest.get("kind") == "Secret":
            what = f"fails the {exc.validator!r} rule of the schema"
        else:
            what = exc.message
        raise KubeManifestInvalid(
            where, f"{path}: {what} (Kubernetes {exc.version} schema)"
        ) from None
    except library.SchemaNotFoundError as exc:
        raise KubeManifestInvalid(
            where,
            f"no Kubernetes {version} schema for kind {exc.kind!r} of apiVersion "
            f"{exc.api_version!r} (a misspelt kind or apiVersion, or a custom resource, "
            "which cannot be validated)",
        ) from None
