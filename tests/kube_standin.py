"""A stand-in Kubernetes API server for the tests: real HTTP on loopback, objects in memory.

No API server can run here, so the kube service's real ``kubernetes`` client talks to
this instead. It answers the endpoints that client calls, with the status codes and
bodies of a real API server:

- discovery: ``GET /version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1``;
- collections: ``GET`` (list, with ``labelSelector``) and ``POST`` (create: 201, or
  409 ``AlreadyExists``; 404 when the namespace does not exist);
- objects: ``GET`` (200 / 404 ``NotFound``), ``PATCH`` (JSON merge patch; a
  strategic merge patch is applied as a merge patch; 200), ``DELETE`` (200 with a
  ``Status``);

for the namespaced core/v1 and apps/v1 resources in :data:`RESOURCES` and the
cluster-scoped Namespaces, ClusterRoles and ClusterRoleBindings. Errors are ``Status`` objects.

What controllers would do, the test drives: creating a workload (Deployment,
StatefulSet, DaemonSet) creates its pods, Pending and not Ready; creating a Service
with a selector creates its Endpoints, with no address. :meth:`KubeStandIn.set_pods`
moves the pods of a workload (Running, Ready), :meth:`KubeStandIn.set_endpoints`
gives a Service's Endpoints their addresses. With a ``token`` every
request must carry ``Authorization: Bearer <token>`` (401 otherwise).

Every request is recorded (method, path, query, content type, body) so a test can
assert what the client sent, and in which order.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["RESOURCES", "WORKLOADS", "WRITES", "KubeStandIn", "Recorded", "Resource"]

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MERGE_PATCHES = frozenset(
    {"application/merge-patch+json", "application/strategic-merge-patch+json"}
)
#: Namespaces every cluster starts with.
BUILT_IN_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery(self) -> dict[str, Any]:
        return {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update"],
        }


RESOURCES = (
    Resource("", "v1", "namespaces", "Namespace", namespaced=False),
    Resource("", "v1", "configmaps", "ConfigMap"),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    Resource("", "v1", "services", "Service"),
    Resource("apps", "v1", "deployments", "Deployment"),
    Resource("apps", "v1", "statefulsets", "StatefulSet"),
    Resource("apps", "v1", "daemonsets", "DaemonSet"),
    Resource("", "v1", "pods", "Pod"),
    Resource("", "v1", "endpoints", "Endpoints"),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    Resource(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
)
WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
NAMESPACES = RESOURCES[0]


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it (the Authorization header is not kept)."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: Any

    @property
    def is_write(self) -> bool:
        return self.method in WRITES


class ApiError(Exception):
    """Answered as a ``Status`` object with ``code``."""

    def __init__(self, code: HTTPStatus, reason: str, message: str, **details: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.details = code, reason, details

    def status(self) -> dict[str, Any]:
        return _status("Failure", self.code, message=str(self), reason=self.reason, **self.details)


def _status(
    outcome: str, code: int, *, message: str = "", reason: str = "", **details: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": outcome,
        "code": int(code),
    }
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return body


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``target`` by ``patch``."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pod_status(phase: str, ready: bool) -> dict[str, Any]:
    flag = "True" if ready and phase == "Running" else "False"
    return {"phase": phase, "conditions": [{"type": "Ready", "status": flag}]}


def _selected(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selector: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class _Store:
    """Objects by (resource, namespace, name); namespaces are objects like any other."""

    objects: dict[tuple[Resource, str, str], dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stamp(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)


class KubeStandIn:
    """The stand-in API server; a context manager that serves from a daemon thread.

    >>> with KubeStandIn() as api:
    ...     api.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, token: str | None = None, kubernetes_version: str = "1.30") -> None:
        self.token = token
        major, minor = kubernetes_version.split(".")
        self.version_info = {
            "major": major,
            "minor": minor,
            "gitVersion": f"v{major}.{minor}.0",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2024-01-01T00:00:00Z",
            "goVersion": "go1.22.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
        self.requests: list[Recorded] = []
        self._requests_lock = threading.Lock()
        self._store = _Store()
        for name in BUILT_IN_NAMESPACES:
            self._store.objects[(NAMESPACES, "", name)] = self._new_object(
                NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kube-standin", daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what tests look at ----------------------------------------------------------------
    def writes(self) -> list[Recorded]:
        with self._requests_lock:
            return [r for r in self.requests if r.is_write]

    def clear_requests(self) -> None:
        with self._requests_lock:
            self.requests.clear()

    def objects(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Copies of the stored objects (of ``kind``), namespaces included."""
        with self._store.lock:
            found = [
                json.loads(json.dumps(obj))
                for (res, _, _), obj in self._store.objects.items()
                if kind is None or res.kind == kind
            ]
        return iter(found)

    def get(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        """A copy of one stored object, or None."""
        res = next(r for r in RESOURCES if r.kind == kind)
        with self._store.lock:
            obj = self._store.objects.get((res, namespace if res.namespaced else "", name))
            return None if obj is None else json.loads(json.dumps(obj))

    def set_pods(
        self, owner: str, namespace: str, phase: str = "Running", ready: bool = True
    ) -> int:
        """Move every pod of workload ``owner`` to ``phase`` (and Ready or not), as the
        kubelet would; the number of pods moved."""
        pods = self._resource("Pod")
        moved = 0
        with self._store.lock:
            for (res, ns, _), obj in self._store.objects.items():
                owners = obj["metadata"].get("ownerReferences") or []
                if res is pods and ns == namespace and any(o["name"] == owner for o in owners):
                    obj["status"] = _pod_status(phase, ready)
                    self._store.stamp(obj)
                    moved += 1
        return moved

    def set_endpoints(self, name: str, namespace: str, addresses: list[str], port: int) -> None:
        """Give the Endpoints of Service ``name`` these addresses (none: not ready)."""
        endpoints = self._resource("Endpoints")
        with self._store.lock:
            obj = self._store.objects.get((endpoints, namespace, name))
            if obj is None:
                raise KeyError(f"no Endpoints {name} in namespace {namespace}")
            subsets = [{"addresses": [{"ip": a} for a in addresses], "ports": [{"port": port}]}]
            obj["subsets"] = subsets if addresses else []
            self._store.stamp(obj)

    @staticmethod
    def _resource(kind: str) -> Resource:
        return next(r for r in RESOURCES if r.kind == kind)

    def put(self, obj: dict[str, Any]) -> None:
        """Store ``obj`` directly (an object someone else created), with no request logged."""
        res = next(r for r in RESOURCES if r.kind == obj["kind"])
        meta = obj["metadata"]
        with self._store.lock:
            key = (res, meta.get("namespace", "") if res.namespaced else "", meta["name"])
            self._store.objects[key] = self._new_object(res, obj)

    # -- the API ---------------------------------------------------------------------------
    def _new_object(self, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(json.dumps(body))
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = "2024-01-01T00:00:00Z"
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind
        self._store.stamp(obj)
        return obj

    def _record(self, request: Recorded) -> None:
        with self._requests_lock:
            self.requests.append(request)

    def _discovery(self, path: str) -> dict[str, Any] | None:
        groups = sorted({r.group for r in RESOURCES if r.group})
        if path == "/version":
            return self.version_info
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            entries = []
            for group in groups:
                gv = {"groupVersion": f"{group}/v1", "version": "v1"}
                entries.append({"name": group, "versions": [gv], "preferredVersion": gv})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": entries}
        for res_group in ["", *groups]:
            base = f"/apis/{res_group}/v1" if res_group else "/api/v1"
            if path == base:
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{res_group}/v1" if res_group else "v1",
                    "resources": [r.discovery() for r in RESOURCES if r.group == res_group],
                }
        return None

    @staticmethod
    def _no_route() -> ApiError:
        return ApiError(
            HTTPStatus.NOT_FOUND, "NotFound", "the server could not find the requested resource"
        )

    def _route(self, path: str) -> tuple[Resource, str, str | None]:
        """(resource, namespace, name or None) of a resource path; ApiError 404 otherwise."""
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
            if parts[2] != "v1":
                raise self._no_route()
        else:
            raise self._no_route()
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            raise self._no_route()
        for res in RESOURCES:
            if res.group == group and res.plural == rest[0]:
                if res.namespaced is False and namespace:
                    break
                return res, namespace, rest[1] if len(rest) == 2 else None
        raise self._no_route()

    def _not_found(self, res: Resource, name: str) -> ApiError:
        return ApiError(
            HTTPStatus.NOT_FOUND,
            "NotFound",
            f'{res.plural} "{name}" not found',
            name=name,
            kind=res.plural,
        )

    def _require_namespace(self, namespace: str) -> None:
        if (NAMESPACES, "", namespace) not in self._store.objects:
            raise self._not_found(NAMESPACES, namespace)

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, ctype: str | None
    ) -> tuple[int, Any]:
        """(status, JSON answer) of one request; an ApiError becomes a Status object."""
        path = path.rstrip("/") or "/"  # the API server serves /version and /version/ alike
        found = self._discovery(path) if method == "GET" else None
        if found is not None:
            return HTTPStatus.OK, found
        res, namespace, name = self._route(path)
        with self._store.lock:
            if name is None:
                if method == "GET":
                    return HTTPStatus.OK, self._list(res, namespace, query)
                if method == "POST":
                    return HTTPStatus.CREATED, self._create(res, namespace, body)
                raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "MethodNotAllowed", method)
            key = (res, namespace, name)
            current = self._store.objects.get(key)
            if current is None:
                raise self._not_found(res, name)
            if method == "GET":
                return HTTPStatus.OK, current
            if method == "PATCH":
                return HTTPStatus.OK, self._patch(key, current, body, ctype)
            if method == "DELETE":
                return HTTPStatus.OK, self._delete(key, current)
        raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "MethodNotAllowed", method)

    def _list(self, res: Resource, namespace: str, query: dict[str, list[str]]) -> dict[str, Any]:
        selector = (query.get("labelSelector") or [""])[0]
        items = [
            # A list's items carry no kind or apiVersion, as from a real server.
            {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
            for (r, ns, _), obj in sorted(self._store.objects.items(), key=lambda kv: kv[0][1:])
            if r == res
            and (not namespace or ns == namespace)
            and _selected(obj["metadata"].get("labels") or {}, selector)
        ]
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.group_version,
            "metadata": {"resourceVersion": str(self._store.version)},
            "items": items,
        }

    def _create(self, res: Resource, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "BadRequest", "the body is not an object")
        name = body["metadata"].get("name")
        if not name:
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "Invalid",
                f"{res.kind} is invalid: metadata.name: Required value",
            )
        if res.namespaced:
            if body["metadata"].get("namespace") not in (None, namespace):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request",
                )
            self._require_namespace(namespace)
        key = (res, namespace, name)
        if key in self._store.objects:
            raise ApiError(
                HTTPStatus.CONFLICT,
                "AlreadyExists",
                f'{res.plural} "{name}" already exists',
                name=name,
                kind=res.plural,
            )
        obj = self._new_object(res, body)
        if res.namespaced:
            obj["metadata"]["namespace"] = namespace
        self._store.objects[key] = obj
        self._controllers(res, namespace, obj)
        return obj

    def _controllers(self, res: Resource, namespace: str, obj: dict[str, Any]) -> None:
        """What a cluster's controllers make of a new object: a workload's pods
        (Pending), a Service's Endpoints (no address)."""
        spec = obj.get("spec") or {}
        name = obj["metadata"]["name"]
        if res.kind in WORKLOADS:
            pods = self._resource("Pod")
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            owner = {"kind": res.kind, "name": name, "uid": obj["metadata"]["uid"]}
            for index in range(int(spec.get("replicas", 1))):
                suffix = str(index) if res.kind == "StatefulSet" else uuid.uuid4().hex[:5]
                pod = self._new_object(
                    pods,
                    {
                        "metadata": {
                            "name": f"{name}-{suffix}",
                            "namespace": namespace,
                            "labels": dict(labels),
                            "ownerReferences": [owner],
                        },
                        "status": _pod_status("Pending", ready=False),
                    },
                )
                self._store.objects[(pods, namespace, pod["metadata"]["name"])] = pod
        elif res.kind == "Service" and spec.get("selector"):
            endpoints = self._resource("Endpoints")
            if (endpoints, namespace, name) not in self._store.objects:
                self._store.objects[(endpoints, namespace, name)] = self._new_object(
                    endpoints, {"metadata": {"name": name, "namespace": namespace}, "subsets": []}
                )

    def _patch(
        self, key: tuple[Resource, str, str], current: dict[str, Any], body: Any, ctype: str | None
    ) -> dict[str, Any]:
        if ctype not in MERGE_PATCHES:
            raise ApiError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format: {ctype}",
            )
        patched: dict[str, Any] = merge_patch(current, body)
        # What a patch cannot change.
        for field_name in ("name", "namespace", "uid", "creationTimestamp"):
            if field_name in current["metadata"]:
                patched["metadata"][field_name] = current["metadata"][field_name]
        self._store.stamp(patched)
        self._store.objects[key] = patched
        return patched

    def _delete(self, key: tuple[Resource, str, str], current: dict[str, Any]) -> dict[str, Any]:
        res, _, name = key
        del self._store.objects[key]
        if res is NAMESPACES:  # a namespace takes its contents with it
            for inner in [k for k in self._store.objects if k[1] == name and k[0].namespaced]:
                del self._store.objects[inner]
        # What the garbage collector does: a workload's pods, a Service's Endpoints go too.
        uid = current["metadata"]["uid"]
        for inner, obj in list(self._store.objects.items()):
            owners = obj["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == uid for o in owners):
                del self._store.objects[inner]
        if res.kind == "Service":
            self._store.objects.pop((self._resource("Endpoints"), key[1], name), None)
        details = {"name": name, "kind": res.plural, "uid": current["metadata"]["uid"]}
        if res.group:
            details["group"] = res.group
        return _status("Success", HTTPStatus.OK, **details)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request log is `api.requests`

            def _serve(self) -> None:
                split = urlsplit(self.path)
                query = parse_qs(split.query)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = (self.headers.get("Content-Type") or "").split(";")[0] or None
                body: Any = None
                code: int
                answer: Any
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw.decode("utf-8", "replace")
                api._record(Recorded(self.command, split.path, query, content_type, body))
                if (
                    api.token is not None
                    and self.headers.get("Authorization") != f"Bearer {api.token}"
                ):
                    code = HTTPStatus.UNAUTHORIZED
                    answer = _status("Failure", code, message="Unauthorized", reason="Unauthorized")
                else:
                    try:
                        code, answer = api.handle(
                            self.command, split.path, query, body, content_type
                        )
                    except ApiError as exc:
                        code, answer = exc.code, exc.status()
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        return Handler
