"""``runtime.cluster`` settings: heartbeat of the instance registry, the leader lease."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ClusterConfig(BaseModel):
    """How often an instance says it is alive, when it is judged lost, and the lease.

    A leader renews every ``lease / 3`` seconds, so two renewals may fail before
    it steps down; a standby tries to take the lease every ``lease / 5`` seconds
    (at most 1 s), so a dead leader is replaced within ``lease + lease / 5``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Register this instance in the shared store; off: it neither shows in
    #: ``status`` nor competes for the lease (it then leads only when alone:
    #: with no store at all).
    enabled: bool = True
    #: Seconds between two writes of this instance's record.
    heartbeat: float = Field(default=2.0, gt=0, le=300)
    #: Missed heartbeats after which an instance is shown lost.
    lost_after: int = Field(default=3, ge=1, le=1000)
    #: Seconds of silence after which a lost instance is removed from the registry.
    prune_after: float = Field(default=60.0, gt=0, le=86400)
    #: Seconds a leader lease lasts without renewal (at most 10 s, so a dead
    #: leader's duties move within that).
    lease: float = Field(default=6.0, gt=0, le=10)

    @model_validator(mode="after")
    def _prune_after_lost(self) -> Self:
        lost = self.heartbeat * self.lost_after
        if self.prune_after <= lost:
            raise ValueError(
                f"prune_after ({self.prune_after:g}) must be more than heartbeat x "
                f"lost_after ({lost:g}): an instance is shown lost before it is pruned"
            )
        return self

    @property
    def lost_seconds(self) -> float:
        """Silence after which an instance is lost."""
        return self.heartbeat * self.lost_after

    @property
    def renew_every(self) -> float:
        return self.lease / 3

    @property
    def retry_every(self) -> float:
        return min(1.0, self.lease / 5)
