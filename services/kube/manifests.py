"""The desired objects: manifests rendered for the cluster, labelled and validated.

Rendering gives each manifest the kube service's namespace (unless it names one
or its kind is cluster-scoped), then three marks that make a later ``plan``
possible without any other state:

- ``<prefix>/managed-by: jaseci-like`` (label): the runtime owns it, so it may be
  deleted once it leaves the manifests;
- ``<prefix>/config-version: <hash>`` (label): a stable hash of the manifest; an
  object whose label differs is patched;
- ``<prefix>/last-applied`` (annotation): the manifest as last applied, so a patch
  can remove the keys a new manifest dropped (Secret values are not copied here).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jaseci_like_services.kube.errors import KubeManifestInvalid
from jaseci_like_services.kube.schema import check_schema

from jaseci_like.config.secrets import MASK, mask_url
from jaseci_like.manifests import Manifests

MANAGED_BY = "jaseci-like"

#: Kinds that live outside any namespace (they get no ``metadata.namespace``).
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "CSIDriver",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)
#: Keys of a Secret whose values are secret.
SECRET_FIELDS = ("data", "stringData")


@dataclass(frozen=True, order=True)
class Key:
    """What names one object in a cluster."""

    api_version: str
    kind: str
    namespace: str  # "" for a cluster-scoped object
    name: str

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind}/{self.name}{where}"

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> Key:
        meta = manifest.get("metadata") or {}
        return cls(
            str(manifest.get("apiVersion", "")),
            str(manifest.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name", "")),
        )


@dataclass(frozen=True)
class Marks:
    """The label and annotation keys of one label prefix (``jaseci-like.io``)."""

    prefix: str

    @property
    def managed_by(self) -> str:
        return f"{self.prefix}/managed-by"

    @property
    def config_version(self) -> str:
        return f"{self.prefix}/config-version"

    @property
    def last_applied(self) -> str:
        return f"{self.prefix}/last-applied"

    @property
    def selector(self) -> str:
        """The label selector of every object the runtime manages."""
        return f"{self.managed_by}={MANAGED_BY}"

    def is_managed(self, obj: Mapping[str, Any]) -> bool:
        return bool(_labels(obj).get(self.managed_by) == MANAGED_BY)

    def version_of(self, obj: Mapping[str, Any]) -> str | None:
        value = _labels(obj).get(self.config_version)
        return value if isinstance(value, str) else None

    def last_applied_of(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The manifest last applied to ``obj`` ({} when absent or unreadable)."""
        text = ((obj.get("metadata") or {}).get("annotations") or {}).get(self.last_applied)
        if not isinstance(text, str):
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    def decorate(self, applied: Mapping[str, Any]) -> dict[str, Any]:
        """``applied`` with the managed-by and config-version labels and the
        last-applied annotation: the object as it is sent to the cluster."""
        full = copy.deepcopy(dict(applied))
        meta = full.setdefault("metadata", {})
        meta["labels"] = {
            **(meta.get("labels") or {}),
            self.managed_by: MANAGED_BY,
            self.config_version: config_version(applied),
        }
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            self.last_applied: _canonical(_redacted(applied)),
        }
        return full


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_version(manifest: Mapping[str, Any]) -> str:
    """A stable hash of a manifest's content (key order and layout do not count)."""
    return hashlib.sha256(_canonical(manifest).encode()).hexdigest()[:16]


def _redacted(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``manifest`` without the values of a Secret (its keys stay, for patches)."""
    out = copy.deepcopy(dict(manifest))
    if out.get("kind") == "Secret":
        for name in SECRET_FIELDS:
            if isinstance(out.get(name), dict):
                out[name] = dict.fromkeys(out[name], "")
    return out


@dataclass(frozen=True)
class Source:
    """Manifests grouped by kind, and where they came from (named in every error)."""

    where: str
    manifests: Manifests


@dataclass(frozen=True)
class Desired:
    """One object the manifests ask for, rendered and validated."""

    key: Key
    where: str
    #: The manifest with the namespace filled in: what ``last-applied`` records.
    applied: dict[str, Any] = field(repr=False)
    #: ``applied`` with the runtime's labels and annotation: what is sent.
    manifest: dict[str, Any] = field(repr=False)
    version: str


def render(
    sources: Iterable[Source],
    namespace: str,
    marks: Marks,
    kubernetes_version: str,
) -> list[Desired]:
    """Every manifest of ``sources``, rendered and checked against the Kubernetes
    schema; the first problem raises :class:`KubeManifestInvalid`."""
    found: dict[Key, Desired] = {}
    for source in sources:
        for kind, manifests in source.manifests.items():
            for index, manifest in enumerate(manifests):
                one = _render_one(source.where, kind, index, manifest, namespace, marks)
                check_schema(
                    one.manifest,
                    f"{source.where}: {one.key.kind}/{one.key.name}",
                    kubernetes_version,
                )
                twin = found.get(one.key)
                if twin is not None:
                    raise KubeManifestInvalid(
                        source.where, f"{one.key} is also defined in {twin.where}"
                    )
                found[one.key] = one
    return list(found.values())


def _render_one(
    where: str, kind: str, index: int, manifest: Any, namespace: str, marks: Marks
) -> Desired:
    label = f"{kind} #{index + 1}"
    if not isinstance(manifest, dict):
        raise KubeManifestInvalid(where, f"{label}: not a mapping")
    if manifest.get("kind") != kind:
        raise KubeManifestInvalid(
            where, f"{label}: grouped under {kind!r} but its kind is {manifest.get('kind')!r}"
        )
    if not isinstance(manifest.get("apiVersion"), str) or not manifest["apiVersion"]:
        raise KubeManifestInvalid(where, f"{label}: apiVersion: required, a string")
    meta = manifest.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise KubeManifestInvalid(where, f"{label}: metadata.name: required, a string")
    applied = copy.deepcopy(manifest)
    meta = applied["metadata"]
    own = None if kind in CLUSTER_SCOPED else meta.get("namespace") or namespace
    rest = {k: v for k, v in meta.items() if k not in ("name", "namespace")}
    applied["metadata"] = {"name": meta["name"], **({"namespace": own} if own else {}), **rest}
    return Desired(
        key=Key.of(applied),
        where=where,
        applied=applied,
        manifest=marks.decorate(applied),
        version=config_version(applied),
    )


def printable(manifest: Mapping[str, Any], marks: Marks) -> dict[str, Any]:
    """``manifest`` safe to print: Secret values and URL passwords masked, and no
    last-applied annotation (it repeats the manifest)."""
    out = copy.deepcopy(dict(manifest))
    annotations = (out.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(marks.last_applied, None)
        if not annotations:
            del out["metadata"]["annotations"]
    if out.get("kind") == "Secret":
        for name in SECRET_FIELDS:
            if isinstance(out.get(name), dict):
                out[name] = dict.fromkeys(out[name], MASK)
    masked: dict[str, Any] = _mask_urls(out)
    return masked


def _mask_urls(value: Any) -> Any:
    # Not the core's ``mask``: it judges by key, and manifest keys such as
    # ``automountServiceAccountToken`` would lose their values to it.
    if isinstance(value, str):
        return mask_url(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    return value


def merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``: changed keys
    set, dropped keys null, lists replaced whole."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(before, Mapping) and isinstance(value, Mapping):
            inner = merge_diff(before, value)
            if inner:
                patch[key] = inner
        elif key not in old or before != value:
            patch[key] = value
    return patch
