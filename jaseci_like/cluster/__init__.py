"""Many processes, one system: the instance registry, the leader lease, refresh everywhere.

A runtime that starts (``up``, ``worker``, an embedding host) joins: it writes
its record (:class:`ClusterNode`) to the store its processes share, and competes
for the lease (:class:`Leadership`) under which the system's singleton duties
run. Ask with :func:`is_leader`; be told with ``leader_of(meta).on_change``.
"""

from jaseci_like.cluster.config import ClusterConfig
from jaseci_like.cluster.lease import Leadership, is_leader, leader_of
from jaseci_like.cluster.node import ClusterNode, Identity
from jaseci_like.cluster.refresh import RefreshOutcome, refresh_here, request_refresh
from jaseci_like.cluster.store import ClusterStore, Holder, MemoryStore, Seen
from jaseci_like.cluster.view import ClusterView, InstanceView, read_cluster

__all__ = [
    "ClusterConfig",
    "ClusterNode",
    "ClusterStore",
    "ClusterView",
    "Holder",
    "Identity",
    "InstanceView",
    "Leadership",
    "MemoryStore",
    "RefreshOutcome",
    "Seen",
    "is_leader",
    "leader_of",
    "read_cluster",
    "refresh_here",
    "request_refresh",
]
