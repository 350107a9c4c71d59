"""A third-party plugin distribution contributing tasks, for `jaseci-like worker` tests.

Installed with ``tests.plugin_dist`` (pip, an entry point in the ``jaseci_like``
group), so a worker started as a separate process finds its tasks exactly as it
finds any plugin's. Its tasks talk to the test through Redis lists, the one thing
both processes share: ``hold`` pushes its id to ``started``, then blocks on
``gate`` before reporting progress.
"""

from __future__ import annotations

from tests.plugin_dist import Dist

#: Entry-point name and top-level package of the distribution.
PLUGIN = "task_probe"
PACKAGE = "jl_task_probe"

_PLUGIN_MODULE = '''
"""Tasks of the task_probe plugin."""

from __future__ import annotations

import os
from typing import Any

import redis

from jaseci_like import hookimpl


def whoami(ctx: Any, tag: str) -> dict[str, Any]:
    return {"pid": os.getpid(), "tag": tag, "task_id": ctx.id}


def hold(ctx: Any, redis_url: str, started: str, gate: str) -> str:
    client = redis.Redis.from_url(redis_url)
    try:
        client.rpush(started, ctx.id)
        client.blpop([gate], timeout=60)
        ctx.progress(0.5, "past the gate")  # raises once cancelled
        return "not cancelled"
    finally:
        client.close()


@hookimpl
def jaseci_like_tasks() -> dict[str, Any]:
    return {"probe.whoami": whoami, "probe.hold": hold}
'''


def probe_dist() -> Dist:
    return Dist(
        name="jl-task-probe",
        package=PACKAGE,
        files={"plugin.py": _PLUGIN_MODULE},
        entry_points={PLUGIN: f"{PACKAGE}.plugin"},
    )
