"""Registers the group_config service (it needs db) and its commands.

``migrations`` names the folder of this service's Alembic revisions; the db
service applies them (branch ``group_config``) when it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import click
from jaseci_like_configs import defaults
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jaseci_like import CommonService, MemoryHook, ServiceConfig, hookimpl
from jaseci_like.errors import DependencyError
from jaseci_like.loop import RuntimeLoop


class RetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=4, ge=1, le=20)
    base_delay: float = Field(default=0.02, ge=0, le=10)
    max_delay: float = Field(default=1.0, ge=0, le=60)
    #: No retry starts after this many seconds: an outage fails a call fast.
    max_total: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _delays_ordered(self) -> Self:
        # Refused with the config, not at start: an invalid value is never stored.
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"max_delay ({self.max_delay:g}) must not be below base_delay ({self.base_delay:g})"
            )
        return self


class GroupConfigSettings(ServiceConfig):
    max_dotfiles: int = Field(ge=1, le=100_000)
    max_bytes: int = Field(ge=1, le=1 << 30)
    default_domain: str = Field(min_length=1, max_length=64)
    retry: RetrySettings = RetrySettings()

    @field_validator("default_domain")
    @classmethod
    def _domain_name(cls, value: str) -> str:
        # The rules of a domain name the service itself creates (service.validate_name):
        # no invisible or control characters, no '/', not blank.
        if not value.strip() or "/" in value or not value.isprintable():
            raise ValueError("must be a printable name without '/' (e.g. default)")
        return value


class GroupConfigService(CommonService):
    """``app`` is a :class:`GroupConfig` over the db service's engine."""

    name = "group_config"
    config_schema = GroupConfigSettings
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: GroupConfigSettings | None
    default_config: ClassVar[dict[str, Any]] = defaults("group_config")
    requires = ("db",)
    migrations: ClassVar[Path] = Path(__file__).parent / "migrations"

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.loop: RuntimeLoop = (
            hook.meta.loop if hook is not None and hook.meta is not None else RuntimeLoop()
        )
        super().__init__(hook)

    def run(self, hook: MemoryHook | None = None) -> None:
        meta = hook.meta if hook is not None else None
        if meta is None:
            raise DependencyError("group_config needs a hook attached to a MetaService")
        self.loop = meta.loop
        # Imported at start, not at plugin load: the models pull in SQLAlchemy dialects.
        from jaseci_like_services.group_config.app import GroupConfig
        from jaseci_like_services.group_config.types import Limits

        from jaseci_like.repository import RetryPolicy

        engine = meta.get_service("db", hook).app
        c = self.config
        retry = c["retry"]
        app = GroupConfig(
            engine,
            limits=Limits(c["max_dotfiles"], c["max_bytes"]),
            retry=RetryPolicy(
                retry["attempts"], retry["base_delay"], retry["max_delay"], retry["max_total"]
            ),
            loop=meta.loop,
            default_domain=c["default_domain"],
        )
        self.loop.run(app.prepare())
        self.app = app

    def health(self) -> bool:
        return self.app is not None and bool(self.loop.run(self.app.ping(), timeout=5.0))


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [GroupConfigService]


@hookimpl
def jaseci_like_commands(cli: click.Group) -> None:
    from jaseci_like_services.group_config.commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)
