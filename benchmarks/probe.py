"""A one-key service and plugin the config benchmarks set and read."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar

from jaseci_like import CommonService, MemoryHook, ServiceConfig, hookimpl


class ProbeConfig(ServiceConfig):
    level: int = 0
    port: int = 8000


class ProbeService(CommonService):
    name = "probe"
    config_schema = ProbeConfig
    default_config: ClassVar[MappingProxyType[str, Any]] = MappingProxyType(
        {"enabled": True, "level": 0, "port": 8000}
    )

    def run(self, hook: MemoryHook | None = None) -> None:
        self.app = object()


class ProbePlugin:
    @hookimpl
    def jaseci_like_services(self) -> list[type[CommonService]]:
        return [ProbeService]
