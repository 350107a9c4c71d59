"""The requests the kube service sends, over the official client's ``DynamicClient``.

A small typed face over the untyped dynamic client: everything it raises becomes a
:class:`KubeApiError` carrying the status and reason of the API's ``Status`` object,
with no credential in it (the token travels only in a request header).

Discovery is cached in a directory private to this client and removed with it:
the library's default is a shared file in /tmp keyed by the server address, which
another local user could write first.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from jaseci_like_services.kube.config import KubeConfig
from jaseci_like_services.kube.errors import KubeApiError
from jaseci_like_services.kube.manifests import Key
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration, VersionApi
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from kubernetes.dynamic.resource import Resource
from urllib3.exceptions import HTTPError

from jaseci_like.config.secrets import mask_url
from jaseci_like.errors import ConfigError

T = TypeVar("T")
MERGE_PATCH = "application/merge-patch+json"


def connect(config: KubeConfig) -> ApiClient:
    """An ``ApiClient`` for the cluster ``config`` names (no request is sent yet)."""
    configuration = Configuration()
    try:
        if config.in_cluster:
            kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        elif config.host:
            configuration.host = config.host
            if config.token is not None:
                configuration.api_key = {"authorization": config.token.get_secret_value()}
                configuration.api_key_prefix = {"authorization": "Bearer"}
            if config.ca_file:
                configuration.ssl_ca_cert = config.ca_file
        else:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=config.kubeconfig,
                context=config.context,
                client_configuration=configuration,
                persist_config=False,  # never write refreshed credentials back
            )
    except ConfigException as exc:
        where = (
            "in-cluster" if config.in_cluster else f"kubeconfig {config.kubeconfig or '(default)'}"
        )
        raise ConfigError(
            f"kube: cannot load the {where} configuration: {mask_url(str(exc))}"
        ) from None
    if not config.verify_ssl:
        configuration.verify_ssl = False
    return ApiClient(configuration)


class Cluster:
    """One API server, reached through ``api`` (an ``ApiClient``)."""

    def __init__(self, api: ApiClient, timeout: float) -> None:
        self.api = api
        self.timeout = timeout
        self.host = mask_url(str(api.configuration.host))
        self._cache = tempfile.TemporaryDirectory(prefix="jaseci-like-kube-")
        cache_file = str(Path(self._cache.name) / "discovery.json")
        try:
            self.dynamic: Any = self._call(
                "discover the API",
                lambda: DynamicClient(api, cache_file=cache_file),  # type: ignore[no-untyped-call]
            )
        except ValueError as exc:  # the client's word for an http:// URL to an https server
            self._cache.cleanup()
            raise KubeApiError(
                f"cannot discover the API at {self.host}: {mask_url(str(exc))}"
            ) from None
        except BaseException:
            self._cache.cleanup()
            raise
        self._resources: dict[tuple[str, str], Resource | None] = {}

    def close(self) -> None:
        self._cache.cleanup()

    # -- errors ---------------------------------------------------------------------
    def _call(self, what: str, func: Callable[[], T]) -> T:
        try:
            return func()
        except ApiException as exc:
            raise self._refused(what, exc) from None
        except (HTTPError, OSError) as exc:
            raise KubeApiError(
                f"cannot {what}: the Kubernetes API at {self.host} is unreachable "
                f"({type(exc).__name__}); check kube.host / the kubeconfig, and the network"
            ) from None

    def _refused(self, what: str, exc: ApiException) -> KubeApiError:
        message, reason = "", str(exc.reason or "")
        try:
            status = json.loads(exc.body) if exc.body else {}
        except (TypeError, ValueError):
            status = {}
        if isinstance(status, dict):
            message = str(status.get("message") or "")
            reason = str(status.get("reason") or reason)
        detail = f": {mask_url(message)}" if message else ""
        return KubeApiError(
            f"cannot {what}: the API answered {exc.status} {reason}{detail}",
            status=exc.status,
            reason=reason or None,
        )

    # -- discovery ------------------------------------------------------------------
    def version(self) -> str:
        """The server's version (``v1.30.0``): a cheap request, used as the health check."""
        info = self._call(
            "read the version", lambda: VersionApi(self.api).get_code(_request_timeout=self.timeout)
        )
        return str(info.git_version)

    def served(self, api_version: str, kind: str) -> bool:
        return self._resource(api_version, kind) is not None

    def namespaced(self, api_version: str, kind: str) -> bool:
        """Whether the server keeps ``kind`` in namespaces (False for an unserved kind)."""
        resource = self._resource(api_version, kind)
        return bool(resource is not None and resource.namespaced)

    def _resource(self, api_version: str, kind: str) -> Resource | None:
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self._call(
                f"discover {kind} ({api_version})", lambda: self._discover(api_version, kind)
            )
        return self._resources[key]

    def _discover(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        # Look only where the server says the group/version is: a miss in the
        # client's search throws its whole discovery cache away.
        groups = self.dynamic.resources.parse_api_groups(request_resources=False)
        prefix = "apis" if group else "api"
        if version not in groups.get(prefix, {}).get(group, {}):
            return None
        try:
            found: Resource = self.dynamic.resources.get(
                prefix=prefix, api_version=api_version, kind=kind
            )
        except ResourceNotFoundError:
            return None
        return found

    def _require(self, key: Key) -> Resource:
        resource = self._resource(key.api_version, key.kind)
        if resource is None:
            raise KubeApiError(
                f"{key}: the cluster at {self.host} does not serve {key.kind} ({key.api_version})",
                reason="NotServed",
            )
        return resource

    # -- objects --------------------------------------------------------------------
    def get(self, key: Key) -> dict[str, Any] | None:
        """The live object, or None when the API answers 404."""
        resource = self._require(key)

        def read() -> dict[str, Any] | None:
            try:
                found = self.dynamic.get(
                    resource,
                    name=key.name,
                    namespace=key.namespace or None,
                    _request_timeout=self.timeout,
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            return _as_dict(found)

        return self._call(f"read {key}", read)

    def list(
        self, api_version: str, kind: str, namespaces: Iterable[str], selector: str
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` matching ``selector``: in each of ``namespaces`` for a
        namespaced kind, cluster-wide otherwise. Items get their kind and apiVersion."""
        resource = self._resource(api_version, kind)
        if resource is None:
            return []
        scopes = sorted(set(namespaces)) if resource.namespaced else [None]
        items: list[dict[str, Any]] = []
        for namespace in scopes:

            def read(ns: str | None = namespace) -> Any:
                return self.dynamic.get(
                    resource, namespace=ns, label_selector=selector, _request_timeout=self.timeout
                )

            found = self._call(f"list {kind} ({api_version})", read)
            for item in _as_dict(found).get("items") or []:
                items.append({**item, "apiVersion": api_version, "kind": kind})
        return items

    def create(self, key: Key, body: dict[str, Any]) -> None:
        resource = self._require(key)
        self._call(
            f"create {key}",
            lambda: self.dynamic.create(
                resource, body=body, namespace=key.namespace or None, _request_timeout=self.timeout
            ),
        )

    def patch(self, key: Key, body: dict[str, Any]) -> None:
        resource = self._require(key)
        self._call(
            f"patch {key}",
            lambda: self.dynamic.patch(
                resource,
                body=body,
                name=key.name,
                namespace=key.namespace or None,
                content_type=MERGE_PATCH,
                _request_timeout=self.timeout,
            ),
        )

    def delete(self, key: Key) -> None:
        resource = self._require(key)
        self._call(
            f"delete {key}",
            lambda: self.dynamic.delete(
                resource,
                name=key.name,
                namespace=key.namespace or None,
                _request_timeout=self.timeout,
            ),
        )


def _as_dict(found: Any) -> dict[str, Any]:
    value = found.to_dict() if hasattr(found, "to_dict") else found
    return value if isinstance(value, dict) else {}
