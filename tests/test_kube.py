"""The kube service against a stand-in Kubernetes API server (``tests/kube_standin.py``).

The client under test is the real ``kubernetes`` package; the stand-in stores objects
in memory, answers with a real API server's status codes and Status objects, and
records every request, so each test asserts what was sent and in which order.
Manifests come from the packaged ``kubes/`` files and from an in-code plugin service
that declares ``kube_manifest`` (a new file for each version of its manifests).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from jaseci_like_kubes import manifest as packaged_manifest
from jaseci_like_kubes import names as packaged_names
from jaseci_like_services.kube import (
    KubeApiError,
    KubeConflict,
    KubeManifestInvalid,
    KubeService,
)
from jaseci_like_services.kube import plugin as kube_plugin
from jaseci_like_services.kube.plan import stage_of
from kubernetes.client import ApiClient, Configuration, CoreV1Api, V1ConfigMap, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from jaseci_like import (
    CommonService,
    ConfigApi,
    ConfigError,
    MemoryHook,
    MetaService,
    Runtime,
    hookimpl,
)
from tests.kube_standin import KubeStandIn, Recorded
from tests.plugin_fixtures import Cli, parse_table
from tests.servers import free_port

pytest_plugins = ["tests.plugin_fixtures"]

TOKEN = "kube-token-5f2c9e81d7a4"
SECRET_VALUE = "db-password-77d1c0ffee"
MANAGED = "jaseci-like.io/managed-by"
VERSION = "jaseci-like.io/config-version"
SHIPPED_KINDS = {
    "redis": {"Deployment", "Service"},
    "runtime": {"Deployment", "Service", "ConfigMap"},
    "postgres": {"StatefulSet", "Service", "PersistentVolumeClaim"},
    "promon": {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Service",
        "Deployment",
        "DaemonSet",
    },
}
#: The packaged manifests the kube service applies unless `manage` says otherwise.
MANAGED_BY_DEFAULT = ("postgres", "redis", "runtime")
#: The runtime's variables read from its Secret (jaseci-like-runtime), by key.
RUNTIME_SECRET_URLS = {
    "JASECI_LIKE__DB__URL": "db-url",
    "JASECI_LIKE__REDIS__URL": "redis-url",
    "JASECI_LIKE__TASK__BROKER_URL": "broker-url",
}


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[KubeStandIn]:
    """A stand-in API server on a free loopback port that demands the bearer token."""
    with KubeStandIn(token=TOKEN) as server:
        yield server


class ServicesPlugin:
    """An in-code plugin providing the given service classes."""

    def __init__(self, *classes: type[CommonService]) -> None:
        self.classes = list(classes)

    @hookimpl
    def jaseci_like_services(self) -> list[type[CommonService]]:
        return self.classes


def service_with_manifests(name: str, path: Path) -> type[CommonService]:
    """A service class that declares ``kube_manifest``, as a plugin's would."""
    return type(f"{name.title()}Service", (CommonService,), {"name": name, "kube_manifest": path})


def write_manifests(path: Path, *docs: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False))
    return path


def configmap(data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config"},
        "data": dict(data),
    }


CLAIM: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "web-data"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}
SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}
CONFIG_V1 = configmap({"greeting": "hello", "mode": "fast"})
WEB_V1 = (CONFIG_V1, CLAIM, SERVICE, DEPLOYMENT)


@contextmanager
def kube_service(
    api: KubeStandIn | None,
    folder: Path,
    manifests: Path | None = None,
    **settings: Any,
) -> Iterator[KubeService]:
    """A runtime of the kube plugin (and a "web" service declaring ``manifests``),
    with a kube service of its own built and started against ``api``."""
    section: dict[str, Any] = {"enabled": True, "manage": []}
    if api is not None:
        section |= {"host": api.url, "token": TOKEN}
    section |= settings
    config = folder / f"config-{len(list(folder.glob('config-*.yaml')))}.yaml"
    config.write_text(yaml.safe_dump({"kube": section}))
    plugins: dict[str, object] = {"kube": kube_plugin}
    if manifests is not None:
        plugins["web"] = ServicesPlugin(service_with_manifests("web", manifests))
    runtime = Runtime(
        config_file=config, environ={}, meta=MetaService.isolated(), discover=False, plugins=plugins
    )
    kube = runtime.meta.build_service("kube", False, runtime.hook)
    assert isinstance(kube, KubeService)
    try:
        yield kube
    finally:
        kube.stop()
        runtime.stop()


def applied(
    api: KubeStandIn, folder: Path, name: str, *docs: Mapping[str, Any], **settings: Any
) -> list[Recorded]:
    """Apply ``docs`` (as manifest file ``name``) in a fresh runtime; the writes it sent."""
    api.clear_requests()
    with kube_service(api, folder, write_manifests(folder / name, *docs), **settings) as kube:
        assert kube.is_running(), kube.error
        kube.apply()
    return api.writes()


def kinds_posted(writes: Sequence[Recorded]) -> list[str]:
    return [str(w.body["kind"]) for w in writes if w.method == "POST"]


def resource_versions(api: KubeStandIn) -> dict[tuple[str, str], str]:
    return {
        (obj["kind"], obj["metadata"]["name"]): obj["metadata"]["resourceVersion"]
        for obj in api.objects()
    }


# -- the shipped manifests ----------------------------------------------------------------


def shipped(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(packaged_manifest(name).read_text()) if d]


@pytest.mark.parametrize("name", sorted(SHIPPED_KINDS))
@pytest.mark.parametrize("version", ["1.30", kubernetes_validate.latest_version()])
def test_shipped_manifests_pass_the_kubernetes_schemas(name: str, version: str) -> None:
    docs = shipped(name)
    assert {d["kind"] for d in docs} == SHIPPED_KINDS[name]
    for doc in docs:
        # Strict: an unknown (misspelt) field fails too. Raises on any problem.
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_packaged_manifests_are_the_three_shipped() -> None:
    assert packaged_names() == sorted(SHIPPED_KINDS)


def test_no_password_is_written_in_a_shipped_manifest() -> None:
    docs = [d for name in SHIPPED_KINDS for d in shipped(name)]
    assert "Secret" not in {d["kind"] for d in docs}
    env = {
        (doc["metadata"]["name"], var["name"]): var
        for doc in docs
        if doc["kind"] in ("Deployment", "StatefulSet")
        for container in doc["spec"]["template"]["spec"]["containers"]
        for var in container.get("env", [])
    }
    reference = {"secretKeyRef": {"name": "jaseci-like-postgres", "key": "password"}}
    assert env[("jaseci-like-postgres", "POSTGRES_PASSWORD")]["valueFrom"] == reference
    # The runtime's URLs (which carry the credentials) come whole from its Secret.
    for name, key in RUNTIME_SECRET_URLS.items():
        ref = {"secretKeyRef": {"name": "jaseci-like-runtime", "key": key}}
        assert env[("jaseci-like", name)]["valueFrom"] == ref
    assert all(
        "value" not in var for (_, name), var in env.items() if "PASSWORD" in name or "URL" in name
    )
    # Nor is any in the runtime's config file: no URL or password key, no URL value.
    (config_map,) = (d for d in shipped("runtime") if d["kind"] == "ConfigMap")
    for text in config_map["data"].values():
        for path, value in _leaves(yaml.safe_load(text)):
            assert not {"url", "password", "broker_url"} & set(path), path
            assert "://" not in str(value), path


def _leaves(doc: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _leaves(value, (*path, str(key)))
    else:
        yield path, doc


def test_every_shipped_service_selects_the_pods_of_its_workload() -> None:
    for name in SHIPPED_KINDS:
        docs = shipped(name)
        pods = [
            d["spec"]["template"]["metadata"]["labels"]
            for d in docs
            if d["kind"] in ("Deployment", "StatefulSet")
        ]
        for service in (d for d in docs if d["kind"] == "Service"):
            selector = service["spec"]["selector"]
            assert any(selector.items() <= labels.items() for labels in pods), service


def test_postgres_keeps_its_data_on_the_shipped_claim() -> None:
    docs = {d["kind"]: d for d in shipped("postgres")}
    volumes = docs["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
    claims = [
        v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
    ]
    assert claims == [docs["PersistentVolumeClaim"]["metadata"]["name"]]
    assert docs["Service"]["metadata"]["name"] == docs["StatefulSet"]["spec"]["serviceName"]


def test_the_runtime_manifest_runs_up_with_the_config_file_of_its_configmap(tmp_path: Path) -> None:
    docs = {d["kind"]: d for d in shipped("runtime")}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = [*container["command"], *container["args"]]
    assert command[:4] == ["jaseci-like", "up", "--profile", "production"]
    config_path = Path(command[command.index("--config") + 1])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    text = docs["ConfigMap"]["data"][config_path.name]
    # The runtime accepts that file under the production profile, with the variables
    # of the container (its Secret's values made up): every key is known and well
    # typed (a refused one raises ConfigError here).
    (tmp_path / "config.yaml").write_text(text)
    made_up = {
        "db-url": "postgresql+asyncpg://jaseci_like:pw@jaseci-like-postgres:5432/jaseci_like",
        "redis-url": "redis://jaseci-like-redis:6379/0",
        "broker-url": "redis://jaseci-like-redis:6379/1",
    }
    environ = {
        var["name"]: var.get("value") or made_up[var["valueFrom"]["secretKeyRef"]["key"]]
        for var in container["env"]
    }
    runtime = Runtime(
        config_file=tmp_path / "config.yaml",
        profile="production",
        environ=environ,
        meta=MetaService.isolated(),
    )
    effective = ConfigApi(runtime.hook)
    assert effective.config_get("redis")["url"] == made_up["redis-url"]
    assert effective.config_get("redis")["enabled"] is True  # from the production profile
    assert effective.config_get("task")["broker_url"] == made_up["broker-url"]
    assert effective.config_get("db")["url"] == made_up["db-url"]
    # The API listens on every interface of the pod, on the port the probes and the
    # Service name.
    api = effective.config_get("api")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (api["host"], api["port"]) == ("0.0.0.0", ports["http"])
    (service_port,) = docs["Service"]["spec"]["ports"]
    assert service_port["targetPort"] in ports
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    # SIGTERM gives the runtime its whole stop budget before the kubelet kills it.
    assert runtime.settings.stop_timeout < pod["terminationGracePeriodSeconds"]


# -- plan and apply ---------------------------------------------------------------------------


def test_apply_on_an_empty_cluster_creates_everything_in_a_safe_order(
    api: KubeStandIn, tmp_path: Path
) -> None:
    with kube_service(api, tmp_path, manage=sorted(SHIPPED_KINDS)) as kube:
        assert kube.is_running(), kube.error
        api.clear_requests()
        plan = kube.plan()
        assert {a.verb for a in plan} == {"create"}
        assert api.writes() == []  # planning only reads
        kube.apply()
    writes = api.writes()
    assert {w.method for w in writes} == {"POST"}
    kinds = kinds_posted(writes)
    # Namespace first; config and claims before services; services before workloads.
    assert kinds[0] == "Namespace"
    assert [stage_of(k) for k in kinds] == sorted(stage_of(k) for k in kinds)
    assert kinds.index("ConfigMap") < kinds.index("Service") < kinds.index("Deployment")
    assert kinds.index("PersistentVolumeClaim") < kinds.index("StatefulSet")
    expected = {("Namespace", "jaseci-like")} | {
        (d["kind"], d["metadata"]["name"]) for name in SHIPPED_KINDS for d in shipped(name)
    }
    posted = {(w.body["kind"], w.body["metadata"]["name"]) for w in writes}
    assert posted == expected
    for kind, name in expected - {("Namespace", "jaseci-like")}:
        stored = api.get(kind, name, "jaseci-like")
        assert stored is not None, (kind, name)
        labels = stored["metadata"]["labels"]
        assert labels[MANAGED] == "jaseci-like"
        assert len(labels[VERSION]) == 16


def test_a_second_apply_without_change_sends_no_write(api: KubeStandIn, tmp_path: Path) -> None:
    first = applied(api, tmp_path, "v1.yaml", *WEB_V1)
    assert len(first) == 5  # the namespace and the four objects
    again = applied(api, tmp_path, "v1-again.yaml", *WEB_V1)
    assert again == []
    assert api.requests, "the second apply did read the cluster"
    with kube_service(api, tmp_path, tmp_path / "v1.yaml") as kube:
        assert {a.verb for a in kube.plan()} == {"unchanged"}


def test_changing_one_manifest_patches_only_that_object(api: KubeStandIn, tmp_path: Path) -> None:
    applied(api, tmp_path, "v1.yaml", *WEB_V1)
    before = resource_versions(api)
    # "greeting" changes and "mode" is dropped.
    writes = applied(api, tmp_path, "v2.yaml", configmap({"greeting": "bonjour"}), *WEB_V1[1:])
    assert [(w.method, w.path) for w in writes] == [
        ("PATCH", "/api/v1/namespaces/jaseci-like/configmaps/web-config")
    ]
    assert writes[0].content_type == "application/merge-patch+json"
    stored = api.get("ConfigMap", "web-config", "jaseci-like")
    assert stored is not None
    assert stored["data"] == {"greeting": "bonjour"}  # the dropped key is gone too
    after = resource_versions(api)
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("ConfigMap", "web-config")}
    with kube_service(api, tmp_path, tmp_path / "v2.yaml") as kube:
        assert {a.verb for a in kube.plan()} == {"unchanged"}


def test_a_dropped_manifest_is_deleted_but_a_dropped_claim_is_kept(
    api: KubeStandIn, tmp_path: Path
) -> None:
    applied(api, tmp_path, "v1.yaml", *WEB_V1)
    only_service = write_manifests(tmp_path / "v3.yaml", SERVICE)
    with kube_service(api, tmp_path, only_service) as kube:
        plan = {(a.key.kind, a.key.name): a.verb for a in kube.plan()}
        api.clear_requests()
        kube.apply()
    assert plan[("PersistentVolumeClaim", "web-data")] == "keep"
    assert plan[("Deployment", "web")] == plan[("ConfigMap", "web-config")] == "delete"
    # Deletions run the apply order backwards: the workload before its config.
    assert [(w.method, w.path) for w in api.writes()] == [
        ("DELETE", "/apis/apps/v1/namespaces/jaseci-like/deployments/web"),
        ("DELETE", "/api/v1/namespaces/jaseci-like/configmaps/web-config"),
    ]
    assert api.get("PersistentVolumeClaim", "web-data", "jaseci-like") is not None
    assert api.get("ConfigMap", "web-config", "jaseci-like") is None

    with kube_service(api, tmp_path, only_service) as kube:
        api.clear_requests()
        kube.apply(force_delete_pvc=True)
    assert [(w.method, w.path) for w in api.writes()] == [
        ("DELETE", "/api/v1/namespaces/jaseci-like/persistentvolumeclaims/web-data")
    ]
    assert api.get("PersistentVolumeClaim", "web-data", "jaseci-like") is None
    assert api.get("Service", "web", "jaseci-like") is not None


def test_a_dry_run_sends_no_write_request(api: KubeStandIn, tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "v1.yaml", *WEB_V1)
    before = list(api.objects())
    with kube_service(api, tmp_path, manifests) as kube:
        plan = kube.apply(dry_run=True)
    assert {a.verb for a in plan} == {"create"}
    assert len(plan) == 5
    assert api.writes() == []
    assert list(api.objects()) == before
    # The config's dry_run does the same when apply is given none.
    with kube_service(api, tmp_path, manifests, dry_run=True) as kube:
        kube.apply()
    assert api.writes() == []


def test_an_object_the_runtime_does_not_manage_is_not_taken_over(
    api: KubeStandIn, tmp_path: Path
) -> None:
    api.put(
        {
            **configmap({"owner": "someone else"}),
            "metadata": {"name": "web-config", "namespace": "jaseci-like"},
        }
    )
    manifests = write_manifests(tmp_path / "v1.yaml", *WEB_V1)
    with kube_service(api, tmp_path, manifests) as kube:
        api.clear_requests()
        with pytest.raises(KubeConflict, match="ConfigMap/web-config") as raised:
            kube.apply()
    assert raised.value.code == "kube_conflict"
    assert api.writes() == []
    stored = api.get("ConfigMap", "web-config", "jaseci-like")
    assert stored is not None
    assert stored["data"] == {"owner": "someone else"}


# -- validation before any request ---------------------------------------------------------------


def _without_selector() -> dict[str, Any]:
    doc = copy.deepcopy(DEPLOYMENT)
    del doc["spec"]["selector"]
    return doc


def _with(path: Sequence[str], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DEPLOYMENT)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


INVALID = {
    "missing selector": (_without_selector(), "'selector' is a required property"),
    "wrong type": (_with(("spec", "replicas"), "two"), "spec.replicas: 'two' is not of type"),
    "unknown field": (_with(("spec", "replicaz"), 2), "'replicaz' was unexpected"),
    "unknown kind": (
        {**DEPLOYMENT, "apiVersion": "apps/v1", "kind": "Deploymint"},
        "no Kubernetes",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_an_invalid_manifest_is_refused_before_any_request(
    api: KubeStandIn, tmp_path: Path, case: str
) -> None:
    doc, problem = INVALID[case]
    manifests = write_manifests(tmp_path / "bad.yaml", CONFIG_V1, doc)
    with kube_service(api, tmp_path, manifests) as kube:
        assert kube.has_failed()
        error = kube.error
        assert isinstance(error, KubeManifestInvalid)
        assert error.code == "kube_manifest_invalid"
        assert str(manifests) in str(error)
        assert f"{doc['kind']}/web" in str(error)
        assert problem in str(error)
        with pytest.raises(KubeManifestInvalid):
            kube.render()
    assert api.requests == []  # not even discovery: nothing reached the cluster


def test_a_manifest_that_turns_invalid_is_refused_by_plan_and_apply_before_any_request(
    api: KubeStandIn, tmp_path: Path
) -> None:
    manifests = write_manifests(tmp_path / "v1.yaml", *WEB_V1)
    with kube_service(api, tmp_path, manifests) as kube:
        assert kube.is_running(), kube.error
        # The web service now ships a broken manifest file (a plugin upgraded in place).
        assert kube.hook is not None and kube.hook.meta is not None
        web = kube.hook.meta.builder("web")
        web.kube_manifest = write_manifests(tmp_path / "v2.yaml", _without_selector())
        api.clear_requests()
        with pytest.raises(KubeManifestInvalid, match="selector"):
            kube.plan()
        with pytest.raises(KubeManifestInvalid, match="selector"):
            kube.apply()
    assert api.requests == []


def test_an_object_defined_twice_is_refused_before_any_request(
    api: KubeStandIn, tmp_path: Path
) -> None:
    redis_service = next(d for d in shipped("redis") if d["kind"] == "Service")
    manifests = write_manifests(tmp_path / "twice.yaml", redis_service)
    with kube_service(api, tmp_path, manifests, manage=["redis"]) as kube:
        assert isinstance(kube.error, KubeManifestInvalid)
        assert "Service/jaseci-like-redis" in str(kube.error)
        assert "kubes/redis.yaml" in str(kube.error)
    assert api.requests == []


def test_a_refused_write_stops_the_apply_and_says_how_far_it_got(
    api: KubeStandIn, tmp_path: Path
) -> None:
    manifests = write_manifests(tmp_path / "v1.yaml", *WEB_V1)
    settings = {"namespace": "absent", "create_namespace": False}
    with kube_service(api, tmp_path, manifests, **settings) as kube:
        assert kube.is_running(), kube.error
        api.clear_requests()
        with pytest.raises(KubeApiError) as refused:
            kube.apply()
    error = refused.value
    assert error.status == 404
    assert error.code == "kube_api_error"
    assert 'namespaces "absent" not found' in str(error)
    assert "0 of 4 changes made before it" in str(error)
    assert [w.method for w in api.writes()] == ["POST"]  # the first refusal stops the run


# -- the token ---------------------------------------------------------------------------------


def test_the_token_never_appears_in_output_logs_or_errors(
    api: KubeStandIn,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    manifests = write_manifests(tmp_path / "v1.yaml", *WEB_V1)
    with kube_service(api, tmp_path, manifests) as kube:
        assert kube.is_running(), kube.error
        texts += [kube.render(), repr(kube.config), repr(kube.settings), repr(kube)]
        texts += [str(a) + repr(a) for a in kube.apply()]
        assert kube.health()
    assert api.writes(), "the token was accepted: the stand-in refuses requests without it"
    # A refused token: the error says so, without the token sent.
    with (
        KubeStandIn(token="another-token") as strict,
        kube_service(strict, tmp_path, manifests) as kube,
    ):
        assert isinstance(kube.error, KubeApiError)
        assert kube.error.status == 401
        texts.append(str(kube.error))
    # A token where it is not used: a config error that names the key, not the value.
    with (
        pytest.raises(ConfigError, match=r"kube\.token") as refused,
        kube_service(None, tmp_path, manifests, token=TOKEN),
    ):
        pass
    texts.append(str(refused.value))
    out, err = capsys.readouterr()
    texts += [out, err, caplog.text]
    assert all(TOKEN not in text for text in texts)


# -- connecting ----------------------------------------------------------------------------------


def test_a_kubeconfig_context_reaches_the_cluster(api: KubeStandIn, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    cluster = {"server": api.url}
    nowhere = {"server": f"http://127.0.0.1:{free_port()}"}
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "standin", "cluster": cluster},
                    {"name": "nowhere", "cluster": nowhere},
                ],
                "users": [{"name": "tester", "user": {"token": TOKEN}}],
                "contexts": [
                    {"name": "standin", "context": {"cluster": "standin", "user": "tester"}},
                    {"name": "nowhere", "context": {"cluster": "nowhere", "user": "tester"}},
                ],
                "current-context": "nowhere",
            }
        )
    )
    with kube_service(None, tmp_path, kubeconfig=str(kubeconfig), context="standin") as kube:
        assert kube.is_running(), kube.error
        assert isinstance(kube.app, ApiClient)
        api.clear_requests()
        assert kube.health()
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/version/")]


def test_an_unreachable_cluster_fails_the_start_with_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with kube_service(None, tmp_path, host=url, token=TOKEN) as kube:
        assert kube.has_failed()
        assert isinstance(kube.error, KubeApiError)
        assert "unreachable" in str(kube.error)
        assert url in str(kube.error)
        assert TOKEN not in str(kube.error)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"token": TOKEN}, "kube.token"),
        ({"manage": ["mongo"]}, "no packaged manifests for mongo"),
        ({"namespace": "Not_A_Label"}, "kube.namespace"),
        ({"in_cluster": True, "host": "https://k8s.example:6443"}, "kube.host"),
        ({"kubernetes_version": "0.1"}, "kube.kubernetes_version"),
        ({"label_prefix": "-bad-"}, "kube.label_prefix"),
    ],
)
def test_impossible_settings_are_refused(
    tmp_path: Path, settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as refused, kube_service(None, tmp_path, **settings):
        pass
    assert problem in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_render_needs_no_cluster_and_masks_secret_values(api: KubeStandIn, tmp_path: Path) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-secret"},
        "stringData": {"password": SECRET_VALUE},
    }
    manifests = write_manifests(tmp_path / "v1.yaml", secret, *WEB_V1)
    with kube_service(api, tmp_path, manifests, enabled=False, manage=["redis"]) as kube:
        assert not kube.is_running()
        text = kube.render()
        docs = list(yaml.safe_load_all(text))
    assert api.requests == []
    assert SECRET_VALUE not in text
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert by_name[("Secret", "web-secret")]["stringData"] == {"password": "***"}
    assert ("Deployment", "jaseci-like-redis") in by_name
    assert ("Namespace", "jaseci-like") in by_name
    assert [stage_of(d["kind"]) for d in docs] == sorted(stage_of(d["kind"]) for d in docs)
    assert all(d["metadata"]["labels"][MANAGED] == "jaseci-like" for d in docs)
    # Applied, the value reaches the cluster but not the last-applied annotation.
    applied(api, tmp_path, "v1-applied.yaml", secret, *WEB_V1)
    stored = api.get("Secret", "web-secret", "jaseci-like")
    assert stored is not None
    assert stored["stringData"] == {"password": SECRET_VALUE}
    assert all(SECRET_VALUE not in v for v in stored["metadata"]["annotations"].values())


# -- the stand-in answers like an API server -----------------------------------------------------


def test_the_stand_in_answers_the_typed_client_with_real_status_codes(api: KubeStandIn) -> None:
    configuration = Configuration(host=api.url)
    configuration.api_key = {"authorization": TOKEN}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    with ApiClient(configuration) as client:
        core = CoreV1Api(client)
        body = V1ConfigMap(metadata=V1ObjectMeta(name="c1"), data={"a": "1"})
        _, status, _ = core.create_namespaced_config_map_with_http_info("default", body)
        assert status == 201
        with pytest.raises(ApiException) as conflict:
            core.create_namespaced_config_map("default", body)
        assert conflict.value.status == 409
        assert '"reason": "AlreadyExists"' in str(conflict.value.body)
        with pytest.raises(ApiException) as missing:
            core.read_namespaced_config_map("nope", "default")
        assert missing.value.status == 404
        assert '"reason": "NotFound"' in str(missing.value.body)
        with pytest.raises(ApiException) as no_namespace:
            core.create_namespaced_config_map("absent", body)
        assert no_namespace.value.status == 404
        _, status, _ = core.delete_namespaced_config_map_with_http_info("c1", "default")
        assert status == 200
    assert [r.method for r in api.requests] == ["POST", "POST", "GET", "POST", "DELETE"]


# -- the command line ----------------------------------------------------------------------------


def kube_env(api: KubeStandIn, token: str = TOKEN) -> dict[str, str]:
    return {
        "JASECI_LIKE__KUBE__ENABLED": "true",
        "JASECI_LIKE__KUBE__HOST": api.url,
        "JASECI_LIKE__KUBE__TOKEN": token,
    }


def test_cli_render_prints_the_shipped_manifests_without_a_cluster(cli: Cli) -> None:
    done = cli.run("kube", "render")
    assert done.returncode == 0, done.stderr
    docs = list(yaml.safe_load_all(done.stdout))
    kinds = {d["kind"] for d in docs}
    assert kinds == {"Namespace"} | set().union(*(SHIPPED_KINDS[n] for n in MANAGED_BY_DEFAULT))
    assert all(d["metadata"]["labels"][MANAGED] == "jaseci-like" for d in docs)


def test_cli_apply_dry_run_then_apply_then_plan(api: KubeStandIn, cli: Cli) -> None:
    env = kube_env(api)
    dry = cli.run("--log-level", "debug", "kube", "apply", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    rows = parse_table(dry.stdout.splitlines())
    assert len(rows) == 1 + sum(len(shipped(n)) for n in MANAGED_BY_DEFAULT)
    assert {r["ACTION"] for r in rows} == {"create"}
    assert "dry run: nothing was changed" in dry.stdout
    assert api.writes() == []
    assert TOKEN not in dry.stdout + dry.stderr

    done = cli.run("kube", "apply", env=env)
    assert done.returncode == 0, done.stderr
    assert len(api.writes()) == len(rows)
    api.clear_requests()
    plan = cli.run("kube", "plan", env=env)
    assert plan.returncode == 0, plan.stderr
    assert {r["ACTION"] for r in parse_table(plan.stdout.splitlines())} == {"unchanged"}
    assert api.writes() == []
    # As the README writes it: `kube render / plan / apply [--dry-run]`, and global
    # options after the subcommand. Plan and render never write: the same output.
    dry_plan = cli.run("kube", "plan", "--dry-run", "--log-level", "debug", env=env)
    assert dry_plan.returncode == 0, dry_plan.stderr
    assert dry_plan.stdout == plan.stdout
    assert api.writes() == []
    dry_render = cli.run("kube", "render", "--dry-run")
    assert dry_render.returncode == 0, dry_render.stderr
    assert dry_render.stdout == cli.run("kube", "render").stdout


def test_cli_exit_codes_say_what_failed(api: KubeStandIn, cli: Cli) -> None:
    disabled = cli.run("kube", "plan")
    assert disabled.returncode == 5
    assert "kube service is disabled" in disabled.stderr
    refused = cli.run("kube", "apply", env=kube_env(api, token="wrong-token"))
    assert refused.returncode == 7
    assert "401 Unauthorized" in refused.stderr
    assert "wrong-token" not in refused.stdout + refused.stderr
    assert api.writes() == []


# -- the seed's kube glob ------------------------------------------------------------------


class SeedWebService(CommonService):
    """Manifests the Jaseci guide's way: ``build_kube`` returns a glob grouped by kind."""

    name = "seedweb"

    def build_kube(self, hook: MemoryHook) -> dict[str, Any]:
        return hook.service_glob(
            "SEEDWEB_KUBE",
            {"ConfigMap": [CONFIG_V1], "Service": [SERVICE], "Deployment": [DEPLOYMENT]},
        )


def test_manifests_from_the_seed_kube_glob_are_planned_and_applied(
    api: KubeStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"kube": {"enabled": True, "manage": [], "host": api.url, "token": TOKEN}})
    )
    runtime = Runtime(
        config_file=config,
        environ={},
        meta=MetaService.isolated(),
        discover=False,
        plugins={"kube": kube_plugin, "seedweb": ServicesPlugin(SeedWebService)},
    )
    try:
        web = SeedWebService(runtime.hook)
        assert web.kube is not None
        assert {kind: [d["metadata"]["name"] for d in docs] for kind, docs in web.kube.items()} == {
            "ConfigMap": ["web-config"],
            "Service": ["web"],
            "Deployment": ["web"],
        }
        kube = runtime.meta.build_service("kube", False, runtime.hook)
        assert isinstance(kube, KubeService) and kube.is_running(), kube.error
        api.clear_requests()
        plan = kube.plan()
        assert {(a.verb, a.key.kind, a.key.name) for a in plan} >= {
            ("create", "ConfigMap", "web-config"),
            ("create", "Service", "web"),
            ("create", "Deployment", "web"),
        }
        assert api.writes() == []
        kube.apply()
        kube.stop()
    finally:
        runtime.stop()
    posted = {(w.body["kind"], w.body["metadata"]["name"]) for w in api.writes()}
    assert {("ConfigMap", "web-config"), ("Service", "web"), ("Deployment", "web")} <= posted
    assert api.get("Deployment", "web", "jaseci-like") is not None
