"""Bodies of the operator views: instances with their services, config with origins.

Shaped for many instances sharing one store; until the instance registry exists
the listing holds this process alone.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ServiceRowV1(BaseModel):
    name: str
    enabled: bool
    #: NOT_STARTED, STARTED, RUNNING, STOPPING, STOPPED or FAILED.
    state: str
    #: Its own health check; None when it is not running.
    healthy: bool | None
    #: Why it is not running or not healthy now (secrets masked), else None.
    error: str | None = None
    #: Times the supervisor brought it back to RUNNING.
    restarts: int = 0
    #: Seconds to the supervisor's next restart attempt, or None.
    retry_in: float | None = None
    #: A dependency that must run before it is tried again.
    waiting_for: str | None = None
    #: The last failure the supervisor saw (kept after a recovery; masked).
    last_error: str | None = None
    #: The supervisor stopped trying: it needs a person.
    gave_up: bool = False
    #: The services it needs (the edges of the dependency graph).
    requires: list[str]
    #: Its start level: 0 needs nothing, level n needs only levels below n.
    level: int


class InstanceV1(BaseModel):
    id: str
    host: str
    pid: int
    version: str
    role: str
    #: Where its API is served, if it serves one.
    api_url: str | None
    #: Holds the lease for singleton duties; None where no lease is kept yet.
    leader: bool | None
    #: Seconds since it last reported (0 for the instance answering).
    last_seen: float
    #: Silent past its own limit: it crashed or cannot reach the store.
    lost: bool = False
    services: list[ServiceRowV1]


class InstanceListV1(BaseModel):
    items: list[InstanceV1]
    #: Why only part of the system is shown (the registry could not be read), else None.
    problem: str | None = None


class ConfigEntryV1(BaseModel):
    #: ``section.key.sub``, as ``jaseci-like config get`` takes it.
    key: str
    #: The effective value, secrets masked (``***``).
    value: Any
    #: The layer it came from: defaults, profile, file, stored, environment, or
    #: "schema default" for a key no layer sets.
    origin: str


class ServiceConfigV1(BaseModel):
    service: str
    entries: list[ConfigEntryV1]
    #: Why the layered config is refused (then ``entries`` are the unvalidated values).
    error: str | None = None


class ConfigListV1(BaseModel):
    items: list[ServiceConfigV1]
