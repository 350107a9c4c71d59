"""The schema of the ``api`` config section."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from jaseci_like import ServiceConfig


class ApiConfig(ServiceConfig):
    host: str = Field(min_length=1, max_length=255)
    #: 8000 unless configured; 0: a free port, picked when the service starts.
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(ge=1024, le=1 << 30)
    keep_alive: int = Field(ge=1, le=3600)
    #: Seconds a request's line and headers may take to arrive (slow clients are cut off).
    header_timeout: float = Field(default=10.0, gt=0, le=3600)
    #: Open connections at most; one more is answered 503 at once and closed.
    max_connections: int = Field(default=512, ge=1, le=1_000_000)
    stop_timeout: float = Field(gt=0, le=60)
    root_path: str = Field(default="", max_length=200)
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    docs: bool = True
    #: Serve the dashboard at /ui (it reads the same /v1 endpoints, signed in by key).
    ui: bool = True

    @field_validator("root_path")
    @classmethod
    def _root_path(cls, value: str) -> str:
        if value and (not value.startswith("/") or value.endswith("/")):
            raise ValueError("give a path like /api (a leading '/', no trailing '/'), or ''")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value
