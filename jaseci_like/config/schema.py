"""The base schemas of service configs: strict when declared, free-form when not."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class ServiceConfig(BaseModel):
    """Keys every service has. Subclasses add their own; unknown keys are refused.

    ``enabled`` and ``quiet`` are taken out of :attr:`CommonService.config` and set
    as attributes of the service (the seed's shape).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    quiet: bool = False


class FreeformConfig(ServiceConfig):
    """The config of a service that declares no schema (the seed's way).

    Every key the layers give is kept, as long as its value is JSON (what a glob
    can hold); ``enabled`` and ``quiet`` are still checked.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)


def is_freeform(schema: type[BaseModel]) -> bool:
    """True for a schema that keeps keys it does not declare."""
    return schema.model_config.get("extra") == "allow"


def known_keys(schema: type[BaseModel]) -> frozenset[str] | None:
    """The keys ``schema`` declares, or None when it takes any key."""
    return None if is_freeform(schema) else frozenset(schema.model_fields)
