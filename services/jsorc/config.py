"""The schema of the ``jsorc`` config section (defaults in configs/jsorc.yaml)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from jaseci_like import ServiceConfig

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class JsOrcConfig(ServiceConfig):
    """The seed's keys (interval, namespace, keep_alive) and the bounds a real one needs."""

    #: Seconds between passes over the keep-alive list.
    interval: float = Field(default=10.0, gt=0, le=86400)
    #: Namespace of the deployed manifests; null: the kube service's namespace.
    namespace: str | None = None
    #: Services kept alive, checked in this order.
    keep_alive: list[str] = Field(default_factory=list)
    #: Seconds to wait for a deployed service's pods and endpoints.
    wait_timeout: float = Field(default=60.0, gt=0, le=3600)
    #: Seconds between two looks at the pods while waiting.
    wait_poll: float = Field(default=0.5, gt=0, le=60)
    #: Wait after the first failed attempt on one service, doubled each time, capped.
    backoff_base: float = Field(default=1.0, gt=0, le=3600)
    backoff_cap: float = Field(default=60.0, gt=0, le=86400)
    #: Failed resets in a row after which jsorc leaves a service alone (only when no
    #: supervisor runs; otherwise the supervisor's own give-up count applies).
    give_up_after: int = Field(default=10, ge=1, le=1_000_000)

    @field_validator("namespace")
    @classmethod
    def _dns_label(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_LABEL.match(value):
            raise ValueError("must be a DNS label: lower-case letters, digits and '-', 63 at most")
        return value

    @field_validator("keep_alive")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not _NAME.match(name)]
        if bad:
            raise ValueError(f"not service names: {', '.join(map(repr, bad))}")
        if len(set(value)) != len(value):
            raise ValueError("names a service twice")
        if "jsorc" in value:
            raise ValueError("jsorc cannot keep itself alive; the supervisor does that")
        return value
