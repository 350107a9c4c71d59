"""Registers the redis service."""

from __future__ import annotations

from jaseci_like_services.redis.service import RedisService

from jaseci_like import CommonService, hookimpl


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [RedisService]
