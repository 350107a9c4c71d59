"""RedisService: one client to a Redis server, PING as its health check."""

from __future__ import annotations

from typing import Any, ClassVar

import redis
from jaseci_like_configs import defaults
from pydantic import Field, SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from jaseci_like import CommonService, CredentialUrl, MemoryHook, RedisHook, ServiceConfig


class RedisConfig(ServiceConfig):
    url: CredentialUrl | None = None
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    db: int = Field(ge=0, le=1023)
    password: SecretStr | None = None
    socket_timeout: float = Field(gt=0, le=60)
    socket_connect_timeout: float = Field(gt=0, le=60)


class RedisService(CommonService):
    """``app`` is a ``redis.Redis``; with a :class:`RedisHook` it also carries the
    config-change listener as a daemon."""

    #: Set while the service runs (None otherwise).
    app: redis.Redis

    name = "redis"
    config_schema = RedisConfig
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: RedisConfig | None
    default_config: ClassVar[dict[str, Any]] = defaults("redis")
    start_blocks = True

    def run(self, hook: MemoryHook | None = None) -> None:
        c = self.config
        options: dict[str, Any] = {
            "socket_timeout": c["socket_timeout"],
            "socket_connect_timeout": c["socket_connect_timeout"],
            # One immediate retry covers a pooled connection the server dropped;
            # more would stall every caller for seconds while Redis is down.
            "retry": Retry(NoBackoff(), 1),
        }
        if c["url"]:
            client = redis.Redis.from_url(c["url"], **options)
        else:
            password = c["password"]
            client = redis.Redis(
                host=c["host"],
                port=c["port"],
                db=c["db"],
                password=password.get_secret_value() if password else None,
                **options,
            )
        try:
            client.ping()
        except BaseException:
            client.close()
            raise
        self.app = client

    def post_run(self, hook: MemoryHook | None = None) -> None:
        if isinstance(hook, RedisHook) and hook.cache_service == self.service_name():
            hook.attach_cache()
            self.spawn_daemon(config_listener=hook.listener(self.app))

    def teardown(self) -> None:
        self.app.close()

    def health(self) -> bool:
        return bool(self.app is not None and self.app.ping())
