"""The schema of the ``mail`` config section."""

from __future__ import annotations

from typing import Literal

from jaseci_like_services.mail.addresses import parse_address
from jaseci_like_services.mail.templates import MailTemplate
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from jaseci_like import ServiceConfig

Security = Literal["plain", "starttls", "ssl"]

#: The standard port of each kind of connection (``port: null``).
STANDARD_PORTS: dict[str, int] = {"plain": 25, "starttls": 587, "ssl": 465}


class MailConfig(ServiceConfig):
    host: str = Field(min_length=1)
    #: None: the standard port of ``security``.
    port: int | None = Field(default=None, ge=1, le=65535)
    #: plain: no TLS; starttls: upgrade after connecting; ssl: TLS from the first byte.
    security: Security = "starttls"
    username: str | None = Field(default=None, min_length=1)
    # validate_default: the username/password pairing is checked even when unset.
    password: SecretStr | None = Field(default=None, validate_default=True)
    timeout: float = Field(gt=0, le=300)
    #: The From address: ``user@example.com`` or ``Name <user@example.com>``.
    sender: str
    #: A PEM file of CA certificates to trust instead of the system's.
    ca_file: str | None = Field(default=None, min_length=1)
    #: False turns certificate checking off: for a test server, never in production.
    verify: bool = True
    templates: dict[str, MailTemplate] = Field(default_factory=dict)

    @field_validator("sender")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        parse_address(value, "the sender")
        return value

    @field_validator("password")
    @classmethod
    def _password_with_username(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        username = info.data.get("username")
        if value is not None and username is None:
            raise ValueError("a password needs a username (mail.username)")
        if value is None and username is not None:
            raise ValueError("required when mail.username is set")
        return value

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else STANDARD_PORTS[self.security]

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.effective_port} ({self.security})"
