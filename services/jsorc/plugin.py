"""Registers the jsorc service and its `jaseci-like jsorc` commands."""

from __future__ import annotations

import click
from jaseci_like_services.jsorc.commands import jsorc_group
from jaseci_like_services.jsorc.service import JsOrcService

from jaseci_like import CommonService, hookimpl


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [JsOrcService]


@hookimpl
def jaseci_like_commands(cli: click.Group) -> None:
    cli.add_command(jsorc_group)
