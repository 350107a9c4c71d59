"""Registers the task service and its `jaseci-like worker` command."""

from __future__ import annotations

import click
from jaseci_like_services.task.commands import worker_command
from jaseci_like_services.task.service import TaskService

from jaseci_like import CommonService, hookimpl


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [TaskService]


@hookimpl
def jaseci_like_commands(cli: click.Group) -> None:
    cli.add_command(worker_command)
