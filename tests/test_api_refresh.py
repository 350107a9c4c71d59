"""Restarts that must not hurt bystanders: a refresh or a dependency's restart while
clients use the API refuses no request, and the API itself is not restarted.

A client thread lists dotfiles without pause while the test refreshes group_config
(20 times) or kills and brings back the Redis a Celery task service runs on; every
answer must be 200. Each refresh waits for a request to have been answered since
the previous one, so requests and refreshes really overlap.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from jaseci_like_services.group_config import DotfileSpec

from jaseci_like import ConfigApi
from tests.api_support import WAIT, ApiRig, api_rig
from tests.servers import RedisServer

REFRESHES = 20


@dataclass
class Traffic:
    """Answers to the requests a client thread sends until stopped, by status."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    answered: threading.Condition = field(default_factory=threading.Condition)
    count: int = 0

    def record(self, status: int | None, error: str | None = None) -> None:
        with self.answered:
            self.count += 1
            if status is not None:
                self.statuses[status] += 1
            if error is not None:
                self.errors.append(error)
            self.answered.notify_all()

    def wait_for_more(self, than: int) -> int:
        """Wait until more than ``than`` requests were answered; the count now."""
        with self.answered:
            assert self.answered.wait_for(lambda: self.count > than, WAIT), "no request answered"
            return self.count


@contextmanager
def listing(rig: ApiRig, path: str) -> Iterator[Traffic]:
    traffic = Traffic()
    stop = threading.Event()

    def loop() -> None:
        with rig.as_role("member") as client:
            while not stop.is_set():
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:  # a refused or dropped connection
                    traffic.record(None, f"{type(exc).__name__}: {exc}")
                    continue
                traffic.record(response.status_code)
                if response.status_code != 200:
                    traffic.errors.append(response.text)

    thread = threading.Thread(target=loop, name="listing", daemon=True)
    thread.start()
    try:
        yield traffic
    finally:
        stop.set()
        thread.join(WAIT)


def test_refreshing_group_config_under_load_refuses_no_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with api_rig(tmp_path) as rig:
        world = rig.seed()
        rig.reset_dotfiles(world.group.id, DotfileSpec(".seed", "x"))
        api_before, server_before = rig.api, rig.api.server
        config = ConfigApi(rig.runtime.hook)
        seen = []
        with listing(rig, f"/v1/groups/{world.group.id}/dotfiles") as traffic:
            answered = traffic.wait_for_more(0)
            for _ in range(REFRESHES):
                refreshed = config.config_refresh("group_config")
                assert refreshed is not None and refreshed.is_running()
                seen.append(refreshed)
                answered = traffic.wait_for_more(answered)
        assert traffic.errors == [], traffic.errors[:3]
        assert set(traffic.statuses) == {200}
        assert traffic.count > REFRESHES
        # Each refresh made a new group_config; the API kept serving, never restarted.
        assert len({id(s) for s in seen}) == REFRESHES
        assert rig.runtime.meta.get_service("group_config") is seen[-1]
        assert rig.api is api_before and rig.api.server is server_before
        assert all(s.state.name == "STOPPED" for s in seen[:-1])
        # A refresh that worked says nothing alarming.
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert loud == [], [r.getMessage() for r in loud[:3]]


def test_the_api_keeps_serving_while_its_task_broker_dies_and_returns(
    tmp_path: Path, redis_server_restartable: RedisServer
) -> None:
    server = redis_server_restartable
    settings = {
        "task.mode": "celery",
        "task.broker_url": server.url,
        "task.workers": "1",
        "runtime.supervisor.interval": "0.1",
        "runtime.supervisor.backoff_base": "0.05",
    }
    with api_rig(tmp_path, settings=settings) as rig:
        world = rig.seed()
        api_before = rig.api
        task_state = rig.runtime.supervisor.state("task")
        with listing(rig, f"/v1/groups/{world.group.id}/dotfiles") as traffic:
            traffic.wait_for_more(0)
            server.kill()
            with traffic.answered:
                assert traffic.answered.wait_for(lambda: task_state.last_error is not None, WAIT), (
                    "the supervisor never saw the task service fail"
                )
            server.start()
            with traffic.answered:
                assert traffic.answered.wait_for(
                    lambda: task_state.restarts >= 1 and rig.tasks.is_running(), WAIT
                ), f"the task service did not come back: {task_state}"
            traffic.wait_for_more(traffic.count)
        assert traffic.errors == [], traffic.errors[:3]
        assert set(traffic.statuses) == {200}
        assert rig.api is api_before, "the API was restarted with the task service"
        assert rig.runtime.supervisor.state("api").restarts == 0
