"""The base schema every service config extends."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ServiceConfig(BaseModel):
    """Keys every service has. Subclasses add their own; unknown keys are refused.

    ``enabled`` and ``quiet`` are taken out of :attr:`CommonService.config` and set
    as attributes of the service (the seed's shape).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    quiet: bool = False
