"""KubeService: the runtime's services as Kubernetes objects, planned and applied.

The manifests come from two places, each grouped by kind (``{Kind: [manifest]}``):
the packaged ``kubes/<name>.yaml`` of the names in ``manage``, and the ``kube``
attribute of every other registered service (a plugin declares ``kube_manifest``).
All are rendered and checked against the Kubernetes schemas before any request::

    kube = meta.get_service("kube", hook)
    for action in kube.plan():
        print(action)               # create / patch / delete / unchanged / keep
    kube.apply()                    # in a safe order; kube.apply(dry_run=True) sends nothing
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import yaml
from jaseci_like_configs import defaults
from jaseci_like_kubes import manifest as packaged_manifest
from jaseci_like_services.kube.config import KubeConfig
from jaseci_like_services.kube.errors import KubeApiError, KubeError, KubeManifestInvalid
from jaseci_like_services.kube.manifests import (
    CLUSTER_SCOPED,
    Desired,
    Key,
    Marks,
    Source,
    printable,
    render,
)
from jaseci_like_services.kube.plan import ORDERED_KINDS, Action, compute, order_key
from jaseci_like_services.kube.schema import newest_version

from jaseci_like import CommonService, ConfigError, MemoryHook
from jaseci_like.manifests import load_manifests

if TYPE_CHECKING:
    from jaseci_like_services.kube.cluster import Cluster
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (a config file in a ConfigMap) as ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


class KubeService(CommonService):
    """``app`` is the official client's ``ApiClient`` for the configured cluster.

    ``render`` needs no cluster; ``plan`` and ``apply`` need the service RUNNING.
    Starting checks every manifest first, so a bad one fails the start with no
    request sent.
    """

    name = "kube"
    config_schema = KubeConfig
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: KubeConfig | None
    default_config: ClassVar[dict[str, Any]] = defaults("kube")
    start_blocks = True

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.cluster: Cluster | None = None
        super().__init__(hook)

    # -- settings ----------------------------------------------------------------------
    @property
    def options(self) -> KubeConfig:
        """The validated config; a refused one raises its ConfigError."""
        if not isinstance(self.settings, KubeConfig):
            raise (
                self.error
                if isinstance(self.error, ConfigError)
                else ConfigError("kube: the configuration was not built")
            )
        return self.settings

    @property
    def marks(self) -> Marks:
        return Marks(self.options.label_prefix)

    @property
    def kubernetes_version(self) -> str:
        return self.options.kubernetes_version or newest_version()

    # -- manifests ----------------------------------------------------------------------
    def sources(self) -> list[Source]:
        """The manifests to apply, grouped by kind, each with where it came from."""
        found = [
            Source(f"kubes/{name}.yaml", load_manifests(packaged_manifest(name)))
            for name in self.options.manage
        ]
        found.extend(self._service_sources())
        return found

    def _service_sources(self) -> list[Source]:
        hook = self.hook
        meta = hook.meta if hook is not None else None
        if hook is None or meta is None:
            return []
        found = []
        for name in sorted(meta.service_names()):
            if name == self.service_name():
                continue
            cls = meta.builder(name)
            service = hook.services.get(name) or meta.registry.background.get(name)
            if service is None:
                if cls.kube_manifest is None and cls.build_kube is CommonService.build_kube:
                    continue  # declares no manifests: nothing to build it for
                service = cls(hook)  # settings only; it is not started
            where = str(cls.kube_manifest) if cls.kube_manifest else f"service {name!r}"
            if service.kube is None and cls.kube_manifest is not None:
                problem = service.error or "its manifests could not be read"
                raise KubeManifestInvalid(where, str(problem))
            if service.kube:
                found.append(Source(where, service.kube))
        return found

    def desired(self) -> list[Desired]:
        """Every object to apply, rendered and checked against the schemas."""
        return self._desired()[0]

    def _desired(self) -> tuple[list[Desired], list[Key]]:
        """The objects to apply, and the keys among them that need only exist (the
        namespace the service creates, which may belong to someone else)."""
        options = self.options
        wanted = render(self.sources(), options.namespace, self.marks, self.kubernetes_version)
        namespace = self._own_namespace()
        if namespace is None or namespace.key in {d.key for d in wanted}:
            return wanted, []
        return [namespace, *wanted], [namespace.key]

    def _own_namespace(self) -> Desired | None:
        """The configured namespace, when the service is to create it."""
        options = self.options
        if not options.create_namespace:
            return None
        doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": options.namespace}}
        source = Source("kube.namespace setting", {"Namespace": [doc]})
        return render([source], options.namespace, self.marks, self.kubernetes_version)[0]

    def render(self) -> str:
        """The objects as multi-document YAML, as they are sent; secrets masked."""
        marks = self.marks
        wanted = sorted(self.desired(), key=lambda d: order_key(d.key))
        docs = [printable(d.manifest, marks) for d in wanted]
        return yaml.dump_all(docs, Dumper=_BlockDumper, sort_keys=False, explicit_start=True)

    # -- cluster ----------------------------------------------------------------------------
    def _cluster(self) -> Cluster:
        if self.cluster is None or not self.is_running():
            why = "disabled" if not self.enabled else self.state.name
            raise KubeError(f"the kube service is not running ({why}); start it first")
        return self.cluster

    def plan(self, force_delete_pvc: bool = False) -> list[Action]:
        """What ``apply`` would do, first to last. Reads the cluster; writes nothing.

        The manifests are checked before the first request.
        """
        desired, ensure_only = self._desired()
        cluster = self._cluster()
        marks = self.marks
        for want in desired:
            if not cluster.served(want.key.api_version, want.key.kind):
                raise KubeApiError(
                    f"{want.key} (from {want.where}): the cluster at {cluster.host} does not "
                    f"serve {want.key.kind} ({want.key.api_version})",
                    reason="NotServed",
                )
            if cluster.namespaced(want.key.api_version, want.key.kind) == (
                want.key.kind in CLUSTER_SCOPED
            ):
                raise KubeManifestInvalid(
                    want.where,
                    f"{want.key}: the cluster and the kube service disagree on whether "
                    f"{want.key.kind} is namespaced",
                )
        namespaces = {self.options.namespace} | {
            d.key.namespace for d in desired if d.key.namespace
        }
        kinds = dict.fromkeys([*ORDERED_KINDS, *((d.key.api_version, d.key.kind) for d in desired)])
        managed: list[dict[str, Any]] = []
        for api_version, kind in kinds:
            managed.extend(cluster.list(api_version, kind, namespaces, marks.selector))
        live: dict[Key, dict[str, Any] | None] = {Key.of(obj): obj for obj in managed}
        for want in desired:
            if want.key not in live:
                live[want.key] = cluster.get(want.key)
        return compute(
            desired,
            live,
            managed,
            marks,
            ensure_only=ensure_only,
            force_delete_pvc=force_delete_pvc,
        )

    def apply(self, dry_run: bool | None = None, force_delete_pvc: bool = False) -> list[Action]:
        """Run the plan in order (``dry_run``: only compute it; None: the config's
        ``dry_run``). Returns the plan. A refused request stops the run; what ran
        before it stays done, and a second apply carries on from there."""
        dry = self.options.dry_run if dry_run is None else dry_run
        actions = self.plan(force_delete_pvc=force_delete_pvc)
        if dry:
            return actions
        cluster = self._cluster()
        steps = [a for a in actions if a.writes]
        for done, action in enumerate(steps):
            try:
                if action.verb == "create":
                    cluster.create(action.key, action.body or {})
                elif action.verb == "patch":
                    cluster.patch(action.key, action.body or {})
                else:
                    cluster.delete(action.key)
            except KubeApiError as exc:
                raise KubeApiError(
                    f"{exc} ({done} of {len(steps)} changes made before it; apply again "
                    "once fixed)",
                    status=exc.status,
                    reason=exc.reason,
                ) from None
            if not self.quiet:
                log.info("kube: %s", action)
        return actions

    # -- lifecycle ----------------------------------------------------------------------------
    def run(self, hook: MemoryHook | None = None) -> None:
        self.desired()  # a bad manifest fails the start before any request
        from jaseci_like_services.kube.cluster import Cluster, connect

        api = connect(self.options)
        try:
            self.cluster = Cluster(api, self.options.request_timeout)
        except BaseException:
            api.close()  # type: ignore[no-untyped-call]
            raise
        self.app = api

    def teardown(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
        api: ApiClient = self.app
        api.close()  # type: ignore[no-untyped-call]

    def health(self) -> bool:
        """GET /version: cheap, and needs nothing but a reachable, authorized API."""
        self._cluster().version()
        return True

    def health_timeout(self) -> float:
        """``kube.request_timeout``: the version request waits at most that long."""
        settings = self.settings
        if isinstance(settings, KubeConfig):
            return settings.request_timeout
        return super().health_timeout()
