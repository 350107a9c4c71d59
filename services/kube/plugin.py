"""Registers the kube service and its `jaseci-like kube` commands."""

from __future__ import annotations

import click
from jaseci_like_services.kube.commands import kube_group
from jaseci_like_services.kube.service import KubeService

from jaseci_like import CommonService, hookimpl


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [KubeService]


@hookimpl
def jaseci_like_commands(cli: click.Group) -> None:
    cli.add_command(kube_group)
