"""The schema of the ``promon`` config section (defaults in configs/promon.yaml)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from jaseci_like import CredentialUrl, ServiceConfig


class PromonConfig(ServiceConfig):
    """Where the Prometheus server is, and how long a request to it may take."""

    #: ``http(s)://[user:password@]host:port[/prefix]``; a password is masked everywhere.
    url: CredentialUrl
    #: A bearer token (sent instead of basic auth when set).
    token: SecretStr | None = None
    #: Seconds one request (connect + answer) may take.
    timeout: float = Field(default=5.0, gt=0, le=300)
    #: Seconds the health check (``/-/ready``) may take.
    health_timeout: float = Field(default=2.0, gt=0, le=60)
    verify_ssl: bool = True
    #: Range the rate helpers look back over, in PromQL (``1m``, ``30s``...).
    window: str = Field(default="1m", pattern=r"^[0-9]+(ms|s|m|h|d)$")
    #: Namespace the per-pod helpers read when the caller names none.
    namespace: str = Field(default="default", min_length=1)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value
