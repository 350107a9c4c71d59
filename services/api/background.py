"""Background work the API hands to the task service (``jaseci_like_tasks``).

Each task runs as the user who asked for it, judged as they are when it runs:
their id and the id of the API key they used travel in the task's arguments,
and every transaction of the task re-reads the user and the key (a group_config
``Submitter``), so a demotion, a removal from the group, a revoked key or a
deleted user ends the task FAILURE with that error's code, nothing more
written. group_config's rules apply inside the task exactly as over HTTP.

The database work runs on the task's own database, the engine behind
``ctx.db()``: never the connection of the request that submitted it, which is
long gone. Work goes in chunks, each ONE transaction; progress is reported
between chunks, which is also where a cancelled task stops: every chunk is
either written whole or not at all.

>>> sorted(TASKS)
['api.dotfiles.copy', 'api.dotfiles.import']
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from jaseci_like_services.api.keys import KeyInUse
from jaseci_like_services.api.types import KeyHolder
from jaseci_like_services.group_config.app import GroupConfig
from jaseci_like_services.group_config.types import (
    CurrentUser,
    Dotfile,
    DotfileSpec,
    Limits,
    Submitter,
)
from jaseci_like_services.task.context import TaskContext, TaskFunc
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.repository import BulkResult, OffsetPagination

COPY = "api.dotfiles.copy"
IMPORT = "api.dotfiles.import"
#: Dotfiles written per transaction (and per progress report).
CHUNK = 25
PAGE = 1000


def actor_args(user: CurrentUser) -> dict[str, str]:
    """Who submits, as task arguments (JSON, so they travel to Celery workers too):
    the user's id and domain, and the API key they used. No role: the task reads
    the user's role when it runs."""
    args = {"id": str(user.id), "domain": user.domain}
    if isinstance(user, KeyHolder):
        args["key_id"] = user.key_id
    return args


def limits_args(limits: Limits) -> dict[str, int]:
    return {"max_dotfiles": limits.max_dotfiles, "max_bytes": limits.max_bytes}


def _actor(doc: dict[str, str]) -> Submitter:
    key_id = doc.get("key_id")
    return Submitter(
        uuid.UUID(doc["id"]), doc["domain"], KeyInUse(key_id) if key_id is not None else None
    )


async def _open(ctx: TaskContext, limits: dict[str, int]) -> GroupConfig:
    """group_config over the task's own database, with the limits the API runs with."""
    async with ctx.db() as session:
        engine = session.bind
    if not isinstance(engine, AsyncEngine):
        raise TypeError("the task's session is not bound to an engine")
    return GroupConfig(engine, limits=Limits(**limits))


def _failure(path: str, error: Any) -> dict[str, str]:
    return {"path": path, "code": error.code, "message": error.message}


def _write_all(
    ctx: TaskContext,
    app: GroupConfig,
    group: str,
    specs: Sequence[DotfileSpec],
    overwrite: bool,
    user: Submitter,
    verb: str,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Write ``specs`` in chunks (one transaction each); written paths and failures."""
    written: list[str] = []
    failed: list[dict[str, Any]] = []
    for start in range(0, len(specs), CHUNK):
        ctx.progress(start / len(specs), f"{verb} {start} of {len(specs)}")
        chunk = specs[start : start + CHUNK]
        write = app.dotfiles.bulk_upsert if overwrite else app.dotfiles.bulk_create
        result: BulkResult[Dotfile] = ctx.run(write(group, chunk, user=user))
        written.extend(d.path for d in result.results)
        for f in result.failures:
            failed.append({"index": start + f.index, **_failure(chunk[f.index].path, f.error)})
    return written, failed


def copy_dotfiles(
    ctx: TaskContext,
    *,
    source: str,
    target: str,
    actor: dict[str, str],
    limits: dict[str, int],
    overwrite: bool = False,
) -> dict[str, Any]:
    """Copy every active dotfile of group ``source`` into group ``target`` (UUIDs).

    Without ``overwrite``, a path the target has already is skipped (and reported).
    """
    user = _actor(actor)
    app = ctx.run(_open(ctx, limits))
    ctx.progress(0.0, "reading the source group")

    async def read() -> list[Dotfile]:
        found: list[Dotfile] = []
        while True:
            page = OffsetPagination(PAGE, len(found))
            listing = await app.dotfiles.search(source, pagination=page, user=user)
            found.extend(listing.page.items)
            if not listing.page.has_next:
                return found

    specs = [DotfileSpec(d.path, d.data, d.permission) for d in ctx.run(read())]
    copied, skipped = _write_all(ctx, app, target, specs, overwrite, user, "copied")
    return {"source": source, "target": target, "copied": copied, "skipped": skipped}


def import_dotfiles(
    ctx: TaskContext,
    *,
    group: str,
    dotfiles: list[dict[str, str]],
    actor: dict[str, str],
    limits: dict[str, int],
    overwrite: bool = False,
) -> dict[str, Any]:
    """Create ``dotfiles`` (``{path, data, permission}``) in ``group`` (a UUID); with
    ``overwrite``, replace those that exist. Refused ones are reported by index."""
    user = _actor(actor)
    app = ctx.run(_open(ctx, limits))
    specs = [DotfileSpec(d["path"], d["data"], d.get("permission", "644")) for d in dotfiles]
    created, failed = _write_all(ctx, app, group, specs, overwrite, user, "imported")
    return {"group": group, "created": created, "failed": failed}


TASKS: dict[str, TaskFunc] = {COPY: copy_dotfiles, IMPORT: import_dotfiles}
