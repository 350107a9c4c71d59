"""The task service in its embedded mode: a thread pool of this process, state in memory.

The scenarios shared with the Celery mode are in ``tests/task_support.py``; the
tests here run them embedded, then check what is particular to this mode: no
server, the Celery app without a broker, stop revoking what is left, plugin
tasks, the config schema.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jaseci_like_services.task import (
    TaskConfig,
    TaskContext,
    TaskRegistrationError,
    TaskService,
    TaskServiceNotRunning,
    TaskState,
    TaskStatus,
    UnknownTask,
)
from jaseci_like_services.task import plugin as task_plugin

from jaseci_like import ConfigError, MemoryHook, MetaService, Runtime, ServiceState, hookimpl
from jaseci_like.config.layers import ConfigLayers
from jaseci_like.runtime import describe_error
from tests import task_support as scenario
from tests.task_support import WAIT, Factory, Gates, environ, make_factory

S = TaskState


@pytest.fixture
def gates() -> Iterator[Gates]:
    found = Gates()
    yield found
    found.release_all()


@pytest.fixture
def make(meta: MetaService, tmp_path: Path) -> Factory:
    return make_factory(meta, tmp_path, {"mode": "embedded"})


# -- the shared scenarios ---------------------------------------------------------------


def test_states_move_pending_started_progress_success(make: Factory, gates: Gates) -> None:
    scenario.states_in_order(make, gates)


def test_a_failing_task_gives_failure_with_its_error_and_no_secret(make: Factory) -> None:
    scenario.failure_is_reported_without_secret(make)


def test_cancel_of_a_running_task_gives_revoked(make: Factory, gates: Gates) -> None:
    scenario.cancel_running(make, gates)


def test_cancel_of_a_queued_task_gives_revoked_and_it_never_runs(
    make: Factory, gates: Gates
) -> None:
    scenario.cancel_queued(make, gates)


def test_cancel_of_a_finished_task_changes_nothing(make: Factory) -> None:
    scenario.cancel_finished_changes_nothing(make)


def test_unknown_task_names_and_ids_are_typed_errors(make: Factory) -> None:
    scenario.unknown_names_and_ids(make)


def test_arguments_must_be_json_so_no_live_object_is_shared(make: Factory) -> None:
    scenario.arguments_must_be_json(make)


def test_a_task_gets_its_own_db_session(make: Factory) -> None:
    scenario.own_db_session(make)


def test_a_task_needing_the_db_without_one_fails_clearly(make: Factory) -> None:
    scenario.db_absent_is_a_clear_failure(make)


def test_a_periodic_task_fires_on_schedule(make: Factory, gates: Gates) -> None:
    scenario.periodic_fires(make, gates)


def test_stop_with_beat_is_bounded_and_leaves_no_thread(make: Factory) -> None:
    scenario.stop_is_bounded_and_leaves_no_thread(make, {"beat"})


# -- embedded specifics -----------------------------------------------------------------


def test_the_default_is_embedded_and_needs_no_server() -> None:
    service = TaskService(MemoryHook(ConfigLayers(environ={})))
    assert service.enabled
    assert service.task_settings.mode == "embedded"
    service.start()
    try:
        assert service.is_running()
        # app is a Celery application in both modes; embedded, it has no broker to use.
        assert type(service.app).__name__ == "Celery"
        assert service.app.conf.broker_url == "memory://"
        service.register("add", lambda ctx, a, b: a + b)
        assert service.wait(service.submit("add", a=2, b=3), WAIT).result == 5
        assert service.daemon_names() == []  # no periodic entry: no beat
    finally:
        service.stop()


def test_stop_is_bounded_by_a_stuck_task_and_drops_queued_ones(
    make: Factory, gates: Gates, caplog: pytest.LogCaptureFixture
) -> None:
    """A task that never checks for cancellation cannot hold stop past its timeout;
    what was still queued never runs."""
    ran: list[str] = []
    threads: list[threading.Thread] = []

    def stuck(ctx: TaskContext) -> None:
        threads.append(threading.current_thread())
        gates["stuck running"].set()
        gates.wait("release stuck")

    service = make({"stuck": stuck, "later": lambda ctx: ran.append("later")}, workers="1")
    service.submit("stuck")
    gates.wait("stuck running")
    service.submit("later")
    with caplog.at_level(logging.WARNING):
        service.stop(timeout=0.2)
    assert service.state is ServiceState.STOPPED
    assert "still running" in caplog.text and "stuck[" in caplog.text
    gates["release stuck"].set()
    threads[0].join(WAIT)  # the pool's thread ends after its task: the queue was dropped
    assert not threads[0].is_alive()
    assert ran == []


def test_after_stop_the_api_says_the_service_is_not_running(make: Factory) -> None:
    service = make({"noop": lambda ctx: None})
    task_id = service.wait(service.submit("noop"), WAIT).id
    service.stop()
    for call in (lambda: service.submit("noop"), lambda: service.status(task_id)):
        with pytest.raises(TaskServiceNotRunning) as refused:
            call()
        assert refused.value.code == "task_service_not_running"


def test_registration_refuses_bad_names_async_functions_and_taken_names(
    make: Factory,
) -> None:
    def one(ctx: TaskContext) -> int:
        return 1

    async def coro(ctx: TaskContext) -> None:
        """Not a task: tasks run coroutines through ctx.run."""

    service = make({"one": one})
    service.register("one", one)  # the same function again: nothing happens
    with pytest.raises(TaskRegistrationError, match="already registered"):
        service.register("one", lambda ctx: 2)
    with pytest.raises(TaskRegistrationError, match="async function"):
        service.register("coro", coro)
    with pytest.raises(TaskRegistrationError, match="task name"):
        service.register("has space", one)
    with pytest.raises(TaskRegistrationError, match="not callable"):
        service.register("value", 3)  # type: ignore[arg-type]
    assert set(service.tasks()) == {"one"}


def test_progress_outside_zero_to_one_is_an_error_of_the_task(make: Factory) -> None:
    def overshoot(ctx: TaskContext) -> None:
        ctx.progress(1.5)

    service = make({"overshoot": overshoot})
    done = service.wait(service.submit("overshoot"), WAIT)
    assert done.state is S.FAILURE
    assert done.error == "ValueError: progress fraction must be within 0..1, not 1.5"


def test_task_status_is_a_frozen_value() -> None:
    status = TaskStatus("id", "name", S.PENDING)
    with pytest.raises(AttributeError):
        status.state = S.SUCCESS  # type: ignore[misc]
    assert not status.done and TaskStatus("id", "name", S.REVOKED).done


# -- plugins and config -----------------------------------------------------------------


class TaskPlugin:
    """A plugin contributing a task through the ``jaseci_like_tasks`` hook."""

    @staticmethod
    def greet(ctx: TaskContext, who: str) -> str:
        return f"hello {who} from {ctx.name}"

    @hookimpl
    def jaseci_like_tasks(self) -> dict[str, Any]:
        return {"plugin.greet": self.greet}


def test_plugin_tasks_reach_the_service_through_the_runtime() -> None:
    runtime = Runtime(
        plugins={"task": task_plugin, "greeter": TaskPlugin()},
        meta=MetaService.isolated(),
        environ={},
        discover=False,
    )
    hook = runtime.start()
    try:
        service = hook.task
        assert isinstance(service, TaskService)
        assert "plugin.greet" in service.tasks()
        done = service.wait(service.submit("plugin.greet", who="you"), WAIT)
        assert done.result == "hello you from plugin.greet"
    finally:
        runtime.stop()


def test_the_production_profile_switches_the_task_service_to_celery() -> None:
    runtime = Runtime(profile="production", meta=MetaService.isolated(), environ={})
    resolved = TaskService.resolve_config(runtime.hook)
    settings = TaskConfig.model_validate(resolved.values)
    assert settings.mode == "celery"
    assert settings.broker_url is not None and settings.broker_url.startswith("redis://")
    assert resolved.origin_of(("mode",)).startswith("profile production ")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"workers": "0"}, "task.workers = '0'"),
        ({"mode": "celery"}, "task.broker_url = None (from default): Value error, required"),
        ({"mode": "sideways"}, "task.mode = 'sideways'"),
        ({"broker_url": "http://example.com"}, "expected a Redis URL"),
        (
            {"periodic": '{"p": {"task": "t", "cron": "61 * * * *"}}'},
            "task.periodic.p.cron",
        ),
        (
            {"periodic": '{"p": {"task": "t", "every": 5, "cron": "* * * * *"}}'},
            "exactly one of 'every'",
        ),
        ({"result_ttl": "0"}, "task.result_ttl"),
    ],
)
def test_a_bad_config_is_refused_with_the_key_named(
    settings: dict[str, str], expected: str
) -> None:
    service = TaskService(MemoryHook(ConfigLayers(environ=environ("task", settings))))
    assert service.enabled  # as the (refused) config asks: its start says why it cannot
    assert isinstance(service.error, ConfigError)
    assert expected in str(service.error)
    assert service.start().has_failed()
    assert isinstance(service.error, ConfigError) and expected in str(service.error)


def test_a_broker_password_in_a_refused_config_is_masked() -> None:
    bad = {"mode": "celery", "broker_url": "redis://:hunter22@cache:6379/x", "workers": "-1"}
    service = TaskService(MemoryHook(ConfigLayers(environ=environ("task", bad))))
    assert isinstance(service.error, ConfigError)
    assert "task.workers" in str(service.error)
    assert "hunter22" not in str(service.error)


def test_a_periodic_entry_naming_an_unknown_task_fails_the_start(meta: MetaService) -> None:
    periodic = '{"nightly": {"task": "does.not.exist", "cron": "0 3 * * *"}}'
    hook = MemoryHook(ConfigLayers(environ=environ("task", {"periodic": periodic})))
    hook.meta = meta
    meta.add_service_builder("task", TaskService)
    service = meta.get_service("task", hook)
    assert service.state is ServiceState.FAILED
    assert isinstance(service.error, UnknownTask)
    message = describe_error(service.error)
    assert message is not None and "task.periodic.nightly.task = 'does.not.exist'" in message
