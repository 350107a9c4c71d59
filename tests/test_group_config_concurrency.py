"""Many writers at once, on SQLite and PostgreSQL: the limits and the one-active-path
rule hold, because each operation is one transaction that serializes on the group."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Sequence

from jaseci_like_services.group_config import (
    DotfileAlreadyExists,
    DotfileLimitExceeded,
    DotfileSpaceExceeded,
    DotfileSpec,
)

from tests.group_config_fixtures import ROOT, Harness, seed_world

pytest_plugins = ["tests.group_config_fixtures"]


async def _gather_outcomes(calls: Sequence[Awaitable[object]]) -> list[str]:
    """Run every call at once; "ok" or the error's class name for each."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    return ["ok" if not isinstance(r, BaseException) else type(r).__name__ for r in results]


def test_200_concurrent_creates_of_distinct_paths_stop_at_exactly_100(gc: Harness) -> None:
    world = gc.run(seed_world(gc.app))
    gid = world.group.id
    limit = gc.app.limits.max_dotfiles
    assert limit == 100

    async def scenario() -> list[str]:
        calls = [
            gc.app.dotfiles.create(gid, DotfileSpec(f".f{n:03}", "data"), user=world.admin)
            for n in range(200)
        ]
        return await _gather_outcomes(calls)

    outcomes = Counter(gc.run(scenario()))
    assert outcomes == {"ok": 100, DotfileLimitExceeded.__name__: 100}
    rows = gc.run(gc.rows(gid))
    assert len(rows) == 100
    assert len({row[2] for row in rows}) == 100
    assert gc.run(gc.app.dotfiles.usage(gid, user=ROOT)).count == 100


def test_20_concurrent_creates_of_one_path_give_exactly_one_success(gc: Harness) -> None:
    world = gc.run(seed_world(gc.app))
    gid = world.group.id

    async def scenario() -> list[str]:
        calls = [
            gc.app.dotfiles.create(gid, DotfileSpec(".bashrc", f"writer {n}"), user=ROOT)
            for n in range(20)
        ]
        return await _gather_outcomes(calls)

    outcomes = Counter(gc.run(scenario()))
    assert outcomes == {"ok": 1, DotfileAlreadyExists.__name__: 19}
    rows = gc.run(gc.rows(gid))
    assert [row[2] for row in rows] == [".bashrc"]


def test_concurrent_writers_never_pass_the_byte_limit(gc: Harness) -> None:
    world = gc.run(seed_world(gc.app))
    gid = world.group.id
    # 30 writers of 5,000 bytes each (path included): only 13 fit in 65,536.
    size = 5_000

    async def scenario() -> list[str]:
        calls = [
            gc.app.dotfiles.create(gid, DotfileSpec(f".w{n:02}", "x" * (size - 4)), user=ROOT)
            for n in range(30)
        ]
        return await _gather_outcomes(calls)

    outcomes = Counter(gc.run(scenario()))
    fits = gc.app.limits.max_bytes // size
    assert outcomes == {"ok": fits, DotfileSpaceExceeded.__name__: 30 - fits}
    usage = gc.run(gc.app.dotfiles.usage(gid, user=ROOT))
    assert usage.bytes == fits * size <= gc.app.limits.max_bytes
    assert usage.leftover_space == gc.app.limits.max_bytes - fits * size
