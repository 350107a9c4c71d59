"""Programs the tests run as real processes, and the ``probe`` plugin they load.

``probe`` is a tiny service whose config can be stored (unlike the bootstrap
``db`` and ``redis`` services): an int ``level`` and a str ``label``. Its
``run`` counts how many times it ran on the instance (``runs``), so a test can
see a reset from outside (``reset`` reuses the instance).

In-process tests and the worker register it with
``Runtime(plugins={"probe": ProbePlugin()})``; the command-line tests install a
small distribution whose entry-point module imports :class:`ProbeService` from
here (see ``probe_site`` in ``tests/test_config_api.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from jaseci_like import CommonService, MemoryHook, ServiceConfig, hookimpl

PROBE = "probe"
PROBE_GLOB = "PROBE_CONFIG"


class ProbeConfig(ServiceConfig):
    level: int = Field(default=0, ge=0, le=1_000_000)
    label: str = "initial"


class ProbeService(CommonService):
    """``app`` is a dict copy of the config it ran with; ``runs`` counts the runs of
    probes in this process (a refresh replaces the instance, so the count is kept
    with the class)."""

    name = PROBE
    config_schema = ProbeConfig
    default_config: ClassVar[dict[str, Any]] = {"enabled": True, "level": 0, "label": "initial"}
    run_count: ClassVar[int] = 0

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.runs = ProbeService.run_count
        super().__init__(hook)

    def run(self, hook: MemoryHook | None = None) -> None:
        ProbeService.run_count += 1
        self.runs = ProbeService.run_count
        self.app = dict(self.config)


class ProbePlugin:
    """An in-code plugin object providing :class:`ProbeService`."""

    @hookimpl
    def jaseci_like_services(self) -> list[type[CommonService]]:
        return [ProbeService]
