"""A queued task acts as its submitter is when it runs, not as they were when they asked.

An admin queues a copy while nothing runs it; then they are demoted, removed from
the group, lose the API key they queued it with, or are deleted. When the task
runs it must end FAILURE with a typed ``error_code`` (read over
``GET /v1/tasks/{task_id}``) and write nothing (read from the database). An admin
left alone is the control: their copy succeeds.

Twice over: the embedded task service on SQLite (held back by a gate task on its
only thread), and Celery on a real redis-server with PostgreSQL, where the tasks
are queued while no worker runs and a second runtime then starts the worker.
Nothing sleeps.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jaseci_like_services.api.keys import key_id_of
from jaseci_like_services.group_config import DotfileSpec, Group, Role
from jaseci_like_services.task import TaskContext, TaskState

from tests.api_support import WAIT, ApiRig, api_rig
from tests.group_config_fixtures import ROOT

GATE = "test.authority.gate"
GATES: dict[str, threading.Event] = {}


def gate(ctx: TaskContext, name: str) -> str:
    if not GATES[name].wait(WAIT):
        raise TimeoutError(f"gate {name} was never opened")
    return name


@dataclass
class Queued:
    """A copy queued by a fresh admin of acme, member of both groups."""

    case: str
    user_id: uuid.UUID
    token: str
    spare_token: str
    source: Group
    target: Group
    task_id: str


def queue_copy(rig: ApiRig, case: str) -> Queued:
    """A fresh admin (two keys; the first queues) copies a fresh source into a fresh
    target; the task waits (no thread or no worker for it)."""
    tag = uuid.uuid4().hex[:8]
    sync = rig.app.sync
    admin = sync.users.create(f"{case}-{tag}@acme.test", Role.ADMIN, domain="acme", user=ROOT)
    source = sync.groups.create(f"src-{tag}", domain="acme", user=ROOT)
    target = sync.groups.create(f"dst-{tag}", domain="acme", user=ROOT)
    for group in (source, target):
        sync.groups.add_member(group.id, admin.id, user=ROOT)
    rig.reset_dotfiles(source.id, DotfileSpec(".vimrc", "set nu"), DotfileSpec(".zshrc", "x=1"))
    token, spare = rig.issue_key(admin.id), rig.issue_key(admin.id)
    with rig.client(token) as client:
        accepted = client.post(
            f"/v1/groups/{source.id}/dotfiles/copy", json={"target": str(target.id)}
        )
    assert accepted.status_code == 202, accepted.text
    task_id: str = accepted.json()["task_id"]
    return Queued(case, admin.id, token, spare, source, target, task_id)


def demote(rig: ApiRig, q: Queued) -> None:
    rig.app.sync.users.set_role(q.user_id, Role.USER, user=ROOT)


def remove_from_group(rig: ApiRig, q: Queued) -> None:
    # Membership is all an admin turned user still reads by; take it from the source.
    rig.app.sync.users.set_role(q.user_id, Role.USER, user=ROOT)
    rig.app.sync.groups.remove_member(q.source.id, q.user_id, user=ROOT)


def revoke_key(rig: ApiRig, q: Queued) -> None:
    keys = rig.api.keys
    assert keys is not None
    key_id = key_id_of(q.token)
    assert key_id is not None
    rig.run(keys.revoke(key_id, actor=ROOT))


def delete_user(rig: ApiRig, q: Queued) -> None:
    rig.app.sync.users.purge(q.user_id, user=ROOT)


def unchanged(rig: ApiRig, q: Queued) -> None:
    """The control: nothing happens to the admin."""


#: case: (what happens to the submitter, error_code, words the error must carry)
CASES: dict[str, tuple[Callable[[ApiRig, Queued], None], str | None, str]] = {
    "demoted": (demote, "forbidden", "may not change group"),
    "removed_from_group": (remove_from_group, "forbidden", "not a member of group"),
    "key_revoked": (revoke_key, "api_key_revoked", "API key"),
    "user_deleted": (delete_user, "user_not_found", "no longer exists"),
    "unchanged": (unchanged, None, ""),
}


def status_over_http(rig: ApiRig, q: Queued) -> dict[str, Any]:
    """The finished task's status as the API answers it: to the submitter's other key
    where they may still ask, else to a superadmin (a deleted user's tasks go with them)."""
    assert rig.tasks.wait(q.task_id, WAIT).done, f"task {q.task_id} did not finish"
    key = rig.keys["superadmin"] if q.case == "user_deleted" else q.spare_token
    with rig.client(key) as client:
        answer = client.get(f"/v1/tasks/{q.task_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def check_outcome(rig: ApiRig, q: Queued) -> None:
    _, code, words = CASES[q.case]
    status = status_over_http(rig, q)
    if code is None:
        assert status["state"] == "SUCCESS", status
        assert sorted(status["result"]["copied"]) == [".vimrc", ".zshrc"]
        assert status["error_code"] is None
        assert sorted(row[2] for row in rig.rows(q.target.id)) == [".vimrc", ".zshrc"]
        return
    assert status["state"] == "FAILURE", (q.case, status)
    assert status["error_code"] == code, (q.case, status)
    assert words in status["error"], (q.case, status)
    assert status["result"] is None
    assert rig.rows(q.target.id) == [], f"{q.case}: the task wrote dotfiles"


# -- the embedded task service --------------------------------------------------------


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    """One worker thread, so a gate task holds every task queued behind it."""
    settings = {"task.workers": "1", "runtime.supervisor.enabled": "false"}
    with api_rig(tmp_path_factory.mktemp("api-authority"), settings=settings) as started:
        started.seed()
        started.tasks.register(GATE, gate)
        yield started


@pytest.mark.parametrize("case", list(CASES))
def test_a_queued_copy_runs_as_its_submitter_is_when_it_runs(rig: ApiRig, case: str) -> None:
    GATES[case] = opened = threading.Event()
    blocker = rig.tasks.submit(GATE, name=case)
    try:
        queued = queue_copy(rig, case)
        assert rig.tasks.status(queued.task_id).state is TaskState.PENDING
        CASES[case][0](rig, queued)
    finally:
        opened.set()
    assert rig.tasks.wait(blocker, WAIT).state is TaskState.SUCCESS
    check_outcome(rig, queued)


def test_a_submitter_demoted_after_the_read_is_refused_the_write(rig: ApiRig) -> None:
    """Every transaction judges the submitter afresh, not once per task: a copy that
    has read its source as an admin is refused the write once they are demoted.

    The test holds SQLite's write lock, so the task's first write waits for it;
    the demotion is committed in that very transaction, before the write can run.
    """
    GATES["mid-task"] = opened = threading.Event()
    blocker = rig.tasks.submit(GATE, name="mid-task")
    lock = sqlite3.connect(rig.sqlite_path, timeout=WAIT, isolation_level=None)
    try:
        q = queue_copy(rig, "demoted")
        lock.execute("BEGIN IMMEDIATE")
        opened.set()
        deadline = time.monotonic() + WAIT
        status = rig.tasks.status(q.task_id)
        while status.message != "copied 0 of 2":  # read done, the first write next
            assert time.monotonic() < deadline and not status.done, status
            status = rig.tasks.status(q.task_id)
        changed = lock.execute("UPDATE gc_users SET role = 'user' WHERE id = ?", (q.user_id.hex,))
        assert changed.rowcount == 1
        lock.execute("COMMIT")
    finally:
        opened.set()
        lock.close()
    assert rig.tasks.wait(blocker, WAIT).state is TaskState.SUCCESS
    check_outcome(rig, q)


# -- Celery on Redis, PostgreSQL, the worker started after the changes -----------------


def test_queued_copies_on_celery_run_as_their_submitters_are_when_a_worker_starts(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    celery = {"task.mode": "celery", "task.broker_url": redis_url, "task.beat": "false"}
    submitter_only = {**celery, "task.workers": "0"}
    with api_rig(tmp_path / "api", postgres_url, submitter_only) as front:
        front.seed()
        queued = [queue_copy(front, case) for case in CASES]
        for q in queued:
            assert front.tasks.status(q.task_id).state is TaskState.PENDING, "a worker ran"
            CASES[q.case][0](front, q)
        with api_rig(tmp_path / "worker", postgres_url, {**celery, "task.workers": "1"}):
            for q in queued:
                check_outcome(front, q)
