"""The kube service's configuration schema (defaults in configs/kube.yaml)."""

from __future__ import annotations

import re

from jaseci_like_kubes import names as packaged_manifests
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from jaseci_like import ServiceConfig

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class KubeConfig(ServiceConfig):
    """Where the cluster is, and what to apply to it."""

    in_cluster: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    host: str | None = None
    token: SecretStr | None = None
    ca_file: str | None = None
    verify_ssl: bool = True
    namespace: str = "jaseci-like"
    create_namespace: bool = True
    label_prefix: str = "jaseci-like.io"
    manage: list[str] = Field(default_factory=list)
    dry_run: bool = False
    kubernetes_version: str | None = None
    request_timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("kubeconfig", "context")
    @classmethod
    def _not_in_cluster(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("in_cluster"):
            raise ValueError("must be null when in_cluster is true")
        return value

    @field_validator("host")
    @classmethod
    def _one_way_in(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be a URL: https://host:port")
        clashing = [k for k in ("in_cluster", "kubeconfig", "context") if info.data.get(k)]
        if clashing:
            raise ValueError(f"must be null when {' and '.join(clashing)} is set: use one of them")
        return value

    @field_validator("token")
    @classmethod
    def _token_needs_host(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not info.data.get("host"):
            raise ValueError("is used with host only; set host too (a kubeconfig carries its own)")
        return value

    @field_validator("namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError("must be a DNS label: lower-case letters, digits and '-', 63 at most")
        return value

    @field_validator("label_prefix")
    @classmethod
    def _dns_subdomain(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            raise ValueError("must be a DNS subdomain, such as jaseci-like.io")
        return value

    @field_validator("manage")
    @classmethod
    def _packaged(cls, value: list[str]) -> list[str]:
        known = packaged_manifests()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(
                f"no packaged manifests for {', '.join(unknown)} (known: {', '.join(known)})"
            )
        if len(set(value)) != len(value):
            raise ValueError("names a service twice")
        return value

    @field_validator("kubernetes_version")
    @classmethod
    def _schemas_known(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from jaseci_like_services.kube.schema import known_versions

        if value.removeprefix("v") not in known_versions():
            raise ValueError(f"no schemas for this version (known: {', '.join(known_versions())})")
        return value.removeprefix("v")
