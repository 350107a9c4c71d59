"""What ``status`` shows: the instances in the registry, who leads, what is wrong."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from jaseci_like.cluster.store import LEADER_LEASE, ClusterStore, Holder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstanceView:
    """One instance as read: its record, seconds since its last heartbeat, lost or not."""

    record: dict[str, Any]
    age: float
    lost: bool

    @property
    def id(self) -> str:
        return str(self.record.get("id"))

    def services(self) -> list[dict[str, Any]]:
        found = self.record.get("services")
        return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []


@dataclass(frozen=True)
class ClusterView:
    store: str
    instances: list[InstanceView]
    leader: Holder | None

    def leads(self, instance: InstanceView) -> bool:
        """Whether ``instance`` holds the lease (the store says; a lost record may not)."""
        return self.leader is not None and self.leader.holder == instance.id

    def problems(self) -> list[str]:
        """Lost instances, FAILED or unhealthy services: why ``status`` exits non-zero."""
        out = []
        for instance in self.instances:
            if instance.lost:
                out.append(f"instance {instance.id} is lost (silent {instance.age:.1f}s)")
                continue
            for service in instance.services():
                name = service.get("name")
                if service.get("state") == "FAILED":
                    out.append(f"{name} is FAILED in instance {instance.id}")
                elif service.get("healthy") is False:
                    out.append(f"{name} is unhealthy in instance {instance.id}")
        return out

    def as_json(self) -> dict[str, Any]:
        leader = self.leader
        return {
            "store": self.store,
            "leader": None
            if leader is None
            else {"id": leader.holder, "token": leader.token, "expires_in": leader.expires_in},
            "instances": [
                {**i.record, "leader": self.leads(i), "last_seen": round(i.age, 3), "lost": i.lost}
                for i in self.instances
            ],
            "problems": self.problems(),
        }


def read_cluster(store: ClusterStore, prune: bool = True) -> ClusterView:
    """The registry now, oldest instance first; ``prune``: instances silent past their
    own ``prune_after`` are removed (and not shown)."""
    shown = []
    for seen in store.instances():
        record = seen.record
        if prune and seen.age > float(record.get("prune_after") or 0) > 0:
            store.remove_instance(str(record.get("id")))
            continue
        lost = seen.age > float(record.get("lost_after") or 0) > 0
        shown.append(InstanceView(record, seen.age, lost))
    shown.sort(key=lambda i: (float(i.record.get("started_at") or 0), i.id))
    return ClusterView(store.kind, shown, store.holder(LEADER_LEASE))
