"""Background work through the API: 202 and a task id, the status moving to SUCCESS
with the result, the dotfiles really there, progress, cancellation, and who may see
a task. Real server, real client, the embedded task service of the same runtime
(and, once, Celery on a real redis-server).

Nothing sleeps: a task is held back by a gate task occupying the only worker
thread, or by the SQLite write lock the test holds; ``TaskService.wait`` blocks
until a task is done.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jaseci_like_services.group_config import DotfileSpec, Group
from jaseci_like_services.task import TaskContext, TaskState

from tests.api_support import WAIT, ApiRig, api_rig, error_of
from tests.group_config_fixtures import ROOT, World

GATE = "test.api.gate"
#: Events the gate task waits on, by name.
GATES: dict[str, threading.Event] = {}


def gate(ctx: TaskContext, name: str) -> str:
    if not GATES[name].wait(WAIT):
        raise TimeoutError(f"gate {name} was never opened")
    return name


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    """One worker thread (so a gate task holds the queue); no supervisor (the test
    holds the SQLite lock, which its health checks would wait on)."""
    settings = {"task.workers": "1", "runtime.supervisor.enabled": "false"}
    with api_rig(tmp_path_factory.mktemp("api-tasks"), settings=settings) as started:
        started.seed()
        started.tasks.register(GATE, gate)
        yield started


def world_of(rig: ApiRig) -> World:
    assert rig.world is not None
    return rig.world


def new_group(rig: ApiRig, name: str) -> Group:
    return rig.app.sync.groups.create(f"{name}-{uuid.uuid4().hex[:6]}", domain="acme", user=ROOT)


def done(rig: ApiRig, task_id: str) -> dict[str, Any]:
    """The task's status over HTTP once the task service says it is done."""
    assert rig.tasks.wait(task_id, WAIT).done, f"task {task_id} did not finish"
    with rig.as_role("superadmin") as client:
        status = client.get(f"/v1/tasks/{task_id}")
    assert status.status_code == 200, status.text
    body: dict[str, Any] = status.json()
    return body


def test_copy_answers_202_then_succeeds_and_the_dotfiles_are_there(rig: ApiRig) -> None:
    source, target = new_group(rig, "src"), new_group(rig, "dst")
    rig.reset_dotfiles(
        source.id,
        DotfileSpec(".bashrc", "alias ll='ls -l'"),
        DotfileSpec(".config/git/config", "[user]\n\tname = A", "600"),
        DotfileSpec(".seed", "from the source"),
    )
    rig.reset_dotfiles(target.id, DotfileSpec(".seed", "the target's own"))
    with rig.as_role("admin") as client:
        accepted = client.post(
            f"/v1/groups/{source.name}/dotfiles/copy",
            params={"domain": "acme"},
            json={"target": str(target.id)},
        )
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["task_id"]
        assert accepted.headers["location"] == accepted.json()["status_url"]
        assert accepted.json()["status_url"] == f"/v1/tasks/{task_id}"
        first = client.get(f"/v1/tasks/{task_id}")
        assert first.status_code == 200
        assert first.json()["state"] in {"PENDING", "STARTED", "PROGRESS", "SUCCESS"}
        status = done(rig, task_id)
        assert status["state"] == "SUCCESS", status
        assert status["name"] == "api.dotfiles.copy" and status["progress"] == 1.0
        result = status["result"]
        assert sorted(result["copied"]) == [".bashrc", ".config/git/config"]
        assert [(s["path"], s["code"]) for s in result["skipped"]] == [
            (".seed", "dotfile_already_exists")
        ]
        listing = client.get(f"/v1/groups/{target.id}/dotfiles", params={"order": "path"})
        got = {d["path"]: (d["data"], d["permission"]) for d in listing.json()["items"]}
        assert got == {
            ".bashrc": ("alias ll='ls -l'", "644"),
            ".config/git/config": ("[user]\n\tname = A", "600"),
            ".seed": ("the target's own", "644"),
        }
        again = client.post(
            f"/v1/groups/{source.id}/dotfiles/copy",
            json={"target": target.name, "target_domain": "acme", "overwrite": True},
        )
        assert again.status_code == 202, again.text
        assert done(rig, again.json()["task_id"])["state"] == "SUCCESS"
        seed = client.get(f"/v1/groups/{target.id}/dotfiles/.seed").json()
        assert seed["data"] == "from the source"


def test_copy_checks_both_groups_before_accepting(rig: ApiRig) -> None:
    world = world_of(rig)
    rig.reset_dotfiles(world.group.id, DotfileSpec(".seed", "seed data"))
    before = rig.rows(world.group.id)
    with rig.as_role("admin") as client:
        missing = client.post(
            f"/v1/groups/{world.group.id}/dotfiles/copy", json={"target": str(uuid.uuid4())}
        )
        assert error_of(missing) == (404, "group_not_found")
    with rig.as_role("other_admin") as client:
        foreign = client.post(
            f"/v1/groups/{world.group.id}/dotfiles/copy", json={"target": str(world.group.id)}
        )
        assert error_of(foreign) == (403, "forbidden")
    with rig.as_role("member") as client:
        # A member may read the group, so the copy is accepted; writing is not theirs,
        # and the task, bound by the same rules, fails without changing anything.
        accepted = client.post(
            f"/v1/groups/{world.group.id}/dotfiles/copy", json={"target": str(world.group.id)}
        )
        assert accepted.status_code == 202, accepted.text
        status = done(rig, accepted.json()["task_id"])
    assert status["state"] == "FAILURE", status
    assert "may not change group" in status["error"]
    assert rig.rows(world.group.id) == before


def test_import_reports_progress_and_a_cancel_keeps_whole_chunks_only(rig: ApiRig) -> None:
    group = new_group(rig, "import")
    items = [{"path": f".rc{n:02}", "data": f"line {n}"} for n in range(60)]
    GATES["import"] = opened = threading.Event()
    blocker = rig.tasks.submit(GATE, name="import")  # the only worker waits on the gate
    lock = sqlite3.connect(rig.sqlite_path, timeout=WAIT, isolation_level=None)
    try:
        with rig.as_role("admin") as client:
            accepted = client.post(
                f"/v1/groups/{group.id}/dotfiles/import", json={"dotfiles": items}
            )
            assert accepted.status_code == 202, accepted.text
            task_id = accepted.json()["task_id"]
            queued = client.get(f"/v1/tasks/{task_id}").json()
            assert queued["state"] == "PENDING", queued
        lock.execute("BEGIN IMMEDIATE")  # the task's first chunk will wait for this
        opened.set()
        deadline = time.monotonic() + WAIT
        status = rig.tasks.status(task_id)
        while status.state is not TaskState.PROGRESS:
            assert time.monotonic() < deadline, f"no progress reported: {status}"
            status = rig.tasks.status(task_id)
        assert (status.progress, status.message) == (0.0, "imported 0 of 60")
        rig.tasks.cancel(task_id)
        lock.execute("ROLLBACK")  # the first chunk commits; the next report sees the cancel
    finally:
        opened.set()
        lock.close()
    assert rig.tasks.wait(blocker, WAIT).state is TaskState.SUCCESS
    status_doc = done(rig, task_id)
    assert status_doc["state"] == "REVOKED", status_doc
    paths = sorted(row[2] for row in rig.rows(group.id))
    assert paths == [f".rc{n:02}" for n in range(25)], "not exactly one whole chunk"


def test_import_succeeds_with_refused_items_reported_by_index(rig: ApiRig) -> None:
    group = new_group(rig, "imp2")
    rig.reset_dotfiles(group.id, DotfileSpec(".taken", "old"))
    items = [
        {"path": ".ok", "data": "fine", "permission": "600"},
        {"path": ".ssh", "data": "reserved"},
        {"path": ".taken", "data": "new"},
    ]
    with rig.as_role("superadmin") as client:
        accepted = client.post(f"/v1/groups/{group.id}/dotfiles/import", json={"dotfiles": items})
        assert accepted.status_code == 202, accepted.text
        status = done(rig, accepted.json()["task_id"])
    assert status["state"] == "SUCCESS", status
    assert status["result"]["created"] == [".ok"]
    assert [(f["index"], f["code"]) for f in status["result"]["failed"]] == [
        (1, "invalid_dotfile_path"),
        (2, "dotfile_already_exists"),
    ]
    rows = {row[2]: row[4] for row in rig.rows(group.id)}
    assert rows == {".ok": "fine", ".taken": "old"}


def test_a_task_is_visible_to_its_submitter_and_superadmins_only(rig: ApiRig) -> None:
    group = new_group(rig, "vis")
    GATES["visible"] = opened = threading.Event()
    blocker = rig.tasks.submit(GATE, name="visible")
    try:
        with rig.as_role("admin") as admin:
            accepted = admin.post(
                f"/v1/groups/{group.id}/dotfiles/import",
                json={"dotfiles": [{"path": ".never", "data": "x"}]},
            )
            task_id = accepted.json()["task_id"]
            with rig.as_role("member") as member:
                assert error_of(member.get(f"/v1/tasks/{task_id}")) == (404, "task_not_found")
                cancel = member.post(f"/v1/tasks/{task_id}/cancel")
                assert error_of(cancel) == (404, "task_not_found")
            with rig.as_role("superadmin") as root:
                assert root.get(f"/v1/tasks/{task_id}").json()["state"] == "PENDING"
                unknown = root.get(f"/v1/tasks/{uuid.uuid4()}")
                assert error_of(unknown) == (404, "task_not_found")
            cancelled = admin.post(f"/v1/tasks/{task_id}/cancel")
            assert cancelled.status_code == 200 and cancelled.json()["state"] == "REVOKED"
    finally:
        opened.set()
    assert rig.tasks.wait(blocker, WAIT).state is TaskState.SUCCESS
    assert done(rig, task_id)["state"] == "REVOKED"
    assert rig.rows(group.id) == [], "a task cancelled while queued must never run"


def test_tasks_are_registered_through_the_plugin_hook(tmp_path: Path) -> None:
    with api_rig(tmp_path) as fresh:
        assert {"api.dotfiles.copy", "api.dotfiles.import"} <= set(
            fresh.runtime.meta.registry.tasks
        )
        assert {"api.dotfiles.copy", "api.dotfiles.import"} <= set(fresh.tasks.tasks())


def test_copy_runs_on_a_celery_worker_with_redis(tmp_path: Path, redis_url: str) -> None:
    settings = {"task.mode": "celery", "task.broker_url": redis_url, "task.workers": "1"}
    with api_rig(tmp_path, settings=settings) as celery:
        world = celery.seed()
        target = new_group(celery, "celery")
        celery.reset_dotfiles(world.group.id, DotfileSpec(".vimrc", "set nu"))
        with celery.as_role("admin") as client:
            accepted = client.post(
                f"/v1/groups/{world.group.id}/dotfiles/copy", json={"target": str(target.id)}
            )
            assert accepted.status_code == 202, accepted.text
            status = done(celery, accepted.json()["task_id"])
            assert status["state"] == "SUCCESS", status
            assert status["result"]["copied"] == [".vimrc"]
            got = client.get(f"/v1/groups/{target.id}/dotfiles/.vimrc")
            assert got.status_code == 200 and got.json()["data"] == "set nu"
