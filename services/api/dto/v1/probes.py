"""Bodies of the probes: liveness and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class HealthV1(BaseModel):
    status: Literal["ok"] = "ok"


class ServiceReadinessV1(BaseModel):
    name: str
    enabled: bool
    state: str
    #: The service's own health check; None when it is not running.
    healthy: bool | None
    #: The supervisor stopped trying to restart it: it needs a person.
    gave_up: bool = False
    restarts: int = 0


class ReadinessV1(BaseModel):
    """Ready when every service the API needs is RUNNING and healthy."""

    ready: bool
    services: list[ServiceReadinessV1]
