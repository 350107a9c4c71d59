"""What a plugin may implement. Mark implementations with ``jaseci_like.hookimpl``.

A plugin is a module (or object) named by an entry point in the ``jaseci_like``
group of its distribution::

    [project.entry-points.jaseci_like]
    stripe = "stripe_plugin.plugin"

and implements any of the hooks below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from jaseci_like.service import CommonService

PROJECT = "jaseci_like"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def jaseci_like_services() -> list[type[CommonService]]:  # type: ignore[empty-body]
    """The service classes this plugin provides.

    Each class carries its registry ``name``, ``config_schema``, ``default_config``,
    ``kube_manifest`` and ``requires``; they are checked when the plugin loads.
    """


@hookspec
def jaseci_like_profiles() -> dict[str, Path]:  # type: ignore[empty-body]
    """Named profiles: YAML files of service sections layered above the defaults."""


@hookspec
def jaseci_like_tasks() -> dict[str, Callable[..., Any]]:  # type: ignore[empty-body]
    """Named background tasks this plugin provides, run by the task service.

    A task is a plain function taking a task context first, then keyword
    arguments: ``def copy(ctx, source, target): ...``.
    """


@hookspec
def jaseci_like_commands(cli: click.Group) -> None:
    """Add commands to the ``jaseci-like`` command line (``cli.add_command(...)``)."""


@hookspec
def jaseci_like_user_created(session: Any, user: Any) -> list[str] | None:
    """A user was just created by ``jaseci-like users create``: lines to print below it.

    ``session`` is that command's group_config session (``runtime``, ``app``, ``api``,
    ``actor``) and ``user`` the new user. The api plugin issues the user's first API
    key here and prints it, once.
    """
