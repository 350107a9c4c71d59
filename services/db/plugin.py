"""Registers the db service and its `jaseci-like db` commands."""

from __future__ import annotations

import click
from jaseci_like_services.db.commands import db_group
from jaseci_like_services.db.service import DbService

from jaseci_like import CommonService, hookimpl


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [DbService]


@hookimpl
def jaseci_like_commands(cli: click.Group) -> None:
    cli.add_command(db_group)
