"""The redis service: a ``redis.Redis`` client as ``app``."""

from jaseci_like_services.redis.service import RedisConfig, RedisService

__all__ = ["RedisConfig", "RedisService"]
