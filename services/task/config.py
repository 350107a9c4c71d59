"""The schema of the ``task`` config section."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from jaseci_like import CredentialUrl, ServiceConfig

Mode = Literal["embedded", "celery"]

_REDIS_SCHEMES = ("redis://", "rediss://")
#: The five fields of a cron line, in order, as Celery's ``crontab`` names them.
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def cron_fields(line: str) -> dict[str, str]:
    """``"*/5 * * * *"`` as keyword arguments of Celery's ``crontab``; checked there."""
    parts = line.split()
    if len(parts) != len(CRON_FIELDS):
        raise ValueError(
            f"a cron line has {len(CRON_FIELDS)} fields (minute hour day-of-month month "
            f"day-of-week), e.g. '*/5 * * * *'; got {len(parts)}"
        )
    fields = dict(zip(CRON_FIELDS, parts, strict=True))
    from celery.schedules import crontab  # type: ignore[import-untyped]

    try:
        crontab(**fields)
    except ValueError as exc:
        raise ValueError(f"not a valid cron line: {exc}") from None
    return fields


class PeriodicTask(BaseModel):
    """One entry of ``task.periodic``: which task, when, with which arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str = Field(min_length=1)
    #: Seconds between runs (the first run one interval after the start).
    every: float | None = Field(default=None, gt=0)
    #: ``"minute hour day-of-month month day-of-week"``, in UTC.
    cron: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            cron_fields(value)
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> PeriodicTask:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' (seconds) and 'cron'")
        return self

    def schedule(self, app: Any) -> Any:
        """This entry's Celery schedule (``schedule`` or ``crontab``) bound to ``app``."""
        from celery.schedules import crontab, schedule

        if self.every is not None:
            return schedule(timedelta(seconds=self.every), app=app)
        assert self.cron is not None
        return crontab(**cron_fields(self.cron), app=app)


class TaskConfig(ServiceConfig):
    mode: Mode
    broker_url: CredentialUrl | None = Field(default=None, validate_default=True)
    result_backend: CredentialUrl | None = None
    workers: int = Field(ge=0, le=256)
    beat: bool = True
    periodic: dict[str, PeriodicTask] = Field(default_factory=dict)
    result_ttl: int = Field(ge=1, le=365 * 24 * 3600)
    stop_timeout: float = Field(gt=0, le=60)

    @field_validator("broker_url", "result_backend")
    @classmethod
    def _redis_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.startswith(_REDIS_SCHEMES):
            raise ValueError("expected a Redis URL: redis://[:password@]host:port/db")
        if value is None and info.field_name == "broker_url" and info.data.get("mode") == "celery":
            raise ValueError("required in celery mode (e.g. redis://127.0.0.1:6379/0)")
        return value

    @field_validator("workers")
    @classmethod
    def _embedded_needs_threads(cls, value: int, info: ValidationInfo) -> int:
        if value == 0 and info.data.get("mode") == "embedded":
            raise ValueError("embedded mode runs tasks on these threads: at least 1")
        return value

    @property
    def backend_url(self) -> str | None:
        """Where results, records and revocations live: ``result_backend`` or the broker."""
        return self.result_backend or self.broker_url
