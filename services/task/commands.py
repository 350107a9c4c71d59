"""`jaseci-like worker`: a process that runs the task service's Celery worker."""

from __future__ import annotations

import os
import sys
import time

import click
from jaseci_like_services.task.config import TaskConfig
from jaseci_like_services.task.service import TaskService

from jaseci_like import ConfigError, Runtime, ServiceStartError
from jaseci_like.cli.main import EXIT_STOP_TIMEOUT, handle_errors, runtime_options
from jaseci_like.cli.signals import StopSignals
from jaseci_like.config.layers import validate
from jaseci_like.config.sources import ENV_PREFIX
from jaseci_like.runtime import describe_error


@click.command("worker")
@runtime_options
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 256),
    default=None,
    help="Threads running tasks [default: task.workers].",
)
@click.option(
    "--beat/--no-beat",
    default=False,
    show_default=True,
    help="Also send the periodic tasks (run beat in exactly one process).",
)
@handle_errors
def worker_command(
    config_file: str | None, profile: str | None, concurrency: int | None, beat: bool
) -> None:
    """Run a Celery worker for the task service until SIGINT or SIGTERM.

    Needs task.mode: celery. The worker runs the tasks every plugin registers,
    taking them from the broker, whichever process submitted them.
    """
    environ = dict(os.environ)
    environ[f"{ENV_PREFIX}TASK__BEAT"] = "true" if beat else "false"
    if concurrency is not None:
        environ[f"{ENV_PREFIX}TASK__WORKERS"] = str(concurrency)
    # StopSignals, not an Event: a signal that lands on another thread must still wake
    # the main thread (a worker once ignored a SIGTERM under load, as `up` did).
    with StopSignals() as stop:
        runtime = Runtime(config_file=config_file, profile=profile, environ=environ)
        try:
            service = _start(runtime)
            click.echo(
                f"ready: task worker {service.worker_name} with "
                f"{service.task_settings.workers} thread(s), {len(service.tasks())} task(s)"
                + (", beat" if beat else "")
            )
            sys.stdout.flush()
            stop.wait()
        finally:
            began = time.monotonic()
            left = runtime.stop()
    if left:
        names = ", ".join(s.service_name() for s in left)
        click.echo(f"error: not stopped within {time.monotonic() - began:.2f}s: {names}", err=True)
        sys.exit(EXIT_STOP_TIMEOUT)
    click.echo(f"stopped in {time.monotonic() - began:.2f}s")


def _start(runtime: Runtime) -> TaskService:
    """The task service started (with the config store), as a worker must find it."""
    if not runtime.meta.has_service_builder("task"):
        raise ServiceStartError("no task service: the task plugin is not loaded")
    cls = runtime.meta.builder("task")
    resolved = cls.resolve_config(runtime.hook)
    mode = resolved.values.get("mode")
    if mode != "celery":
        raise ConfigError(
            f"task.mode = {mode!r} (from {resolved.origin_of(('mode',))}): a separate worker "
            "needs task.mode: celery and a task.broker_url; in embedded mode tasks run "
            "inside the process that submits them"
        )
    settings = validate(TaskConfig, resolved)  # typed: "0" from the environment is 0
    if isinstance(settings, TaskConfig) and settings.workers == 0:
        # Celery mode allows 0 (a process that only submits); a worker with none runs nothing.
        raise click.UsageError(
            f"task.workers = 0 (from {resolved.origin_of(('workers',))}): this worker would "
            "run no task; give it threads with --concurrency N, or set task.workers to 1 "
            "or more (e.g. JASECI_LIKE__TASK__WORKERS=4)",
            click.get_current_context(silent=True),
        )
    runtime.open_store()
    # Joined before the task service starts, so its beat waits for the leader lease.
    runtime.join_cluster("worker")
    runtime.meta.start_services(runtime.hook, ["task"])
    service = runtime.meta.get_service("task", runtime.hook)
    if not isinstance(service, TaskService) or not service.is_running():
        raise ServiceStartError(
            f"the task service did not start: {describe_error(service.error) or service.state.name}"
        )
    return service
