"""Plans: what applying the manifests changes in a cluster, and in which order.

:func:`compute` is pure: it compares the desired objects with the live ones the
kube service read, and returns the actions to run, first to last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jaseci_like_services.kube.errors import KubeConflict
from jaseci_like_services.kube.manifests import Desired, Key, Marks, merge_diff

Verb = Literal["create", "patch", "delete", "unchanged", "keep"]
WRITES: frozenset[Verb] = frozenset({"create", "patch", "delete"})

#: The apply order, stage by stage: namespaces; then what workloads mount or run
#: as (accounts, roles, config, secrets, claims); then services; then workloads.
#: Deletions run it backwards. Kinds not listed go last, after the workloads.
ORDER: tuple[tuple[tuple[str, str], ...], ...] = (
    (("v1", "Namespace"),),
    (
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "PersistentVolumeClaim"),
    ),
    (("v1", "Service"),),
    (
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
    ),
)
#: Every kind in ORDER, in order: the kinds searched for managed objects to delete.
ORDERED_KINDS: tuple[tuple[str, str], ...] = tuple(kind for stage in ORDER for kind in stage)
_RANK = {kind: index for index, (_, kind) in enumerate(ORDERED_KINDS)}

#: Never deleted unless forced: a claim holds data, and deleting a namespace
#: deletes every claim in it.
PROTECTED = frozenset({"PersistentVolumeClaim", "Namespace"})


def stage_of(kind: str) -> int:
    """The apply stage of ``kind`` (0 for namespaces); unknown kinds come last."""
    for index, stage in enumerate(ORDER):
        if any(k == kind for _, k in stage):
            return index
    return len(ORDER)


def order_key(key: Key) -> tuple[int, str, str, str]:
    return (_RANK.get(key.kind, len(_RANK)), key.kind, key.namespace, key.name)


@dataclass(frozen=True)
class Action:
    """One step of a plan. ``body`` (the manifest or the patch) is never printed."""

    verb: Verb
    key: Key
    reason: str
    body: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def writes(self) -> bool:
        return self.verb in WRITES

    def __str__(self) -> str:
        return f"{self.verb} {self.key} ({self.reason})"


def compute(
    desired: Iterable[Desired],
    live: Mapping[Key, Mapping[str, Any] | None],
    managed: Iterable[Mapping[str, Any]],
    marks: Marks,
    *,
    ensure_only: Iterable[Key] = (),
    force_delete_pvc: bool = False,
) -> list[Action]:
    """The actions that make the cluster match ``desired``.

    ``live``: the object found for each desired key (None: absent). ``managed``:
    every object carrying the managed-by label. ``ensure_only``: keys that must
    exist but may belong to someone else (the namespace the service creates).
    An existing object of the manifests that the runtime does not manage raises
    :class:`KubeConflict`: it is never taken over silently.
    """
    only = set(ensure_only)
    forward: list[Action] = []
    conflicts: list[str] = []
    wanted: set[Key] = set()
    for want in sorted(desired, key=lambda d: order_key(d.key)):
        wanted.add(want.key)
        obj = live.get(want.key)
        if obj is None:
            forward.append(Action("create", want.key, "not in the cluster", want.manifest))
        elif want.key in only:
            forward.append(Action("unchanged", want.key, "exists"))
        elif not marks.is_managed(obj):
            conflicts.append(f"{want.key} (from {want.where})")
        elif marks.version_of(obj) == want.version:
            forward.append(Action("unchanged", want.key, f"config-version {want.version}"))
        else:
            before = marks.last_applied_of(obj)
            patch = merge_diff(marks.decorate(before) if before else {}, want.manifest)
            was = marks.version_of(obj) or "none"
            forward.append(
                Action("patch", want.key, f"config-version {was} -> {want.version}", patch)
            )
    if conflicts:
        raise KubeConflict(
            "these objects already exist and are not managed by jaseci-like, so they are "
            "left alone: " + "; ".join(conflicts) + f". Delete them, or label them "
            f"{marks.selector} to let the runtime manage them."
        )
    backward: list[Action] = []
    seen: set[Key] = set()
    for obj in managed:
        key = Key.of(obj)
        if key in wanted or key in seen:
            continue
        seen.add(key)
        if key.kind in PROTECTED and not force_delete_pvc:
            why = (
                "holds data"
                if key.kind == "PersistentVolumeClaim"
                else "deleting it deletes its claims"
            )
            backward.append(
                Action(
                    "keep",
                    key,
                    f"dropped from the manifests, but it {why}; --force-delete-pvc deletes it",
                )
            )
        else:
            backward.append(
                Action("delete", key, "managed by jaseci-like, dropped from the manifests")
            )
    backward.sort(key=lambda a: order_key(a.key), reverse=True)
    return forward + backward
