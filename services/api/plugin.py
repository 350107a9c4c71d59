"""Registers the api service, its background tasks and its commands.

``migrations`` on the service names the folder of its Alembic revisions (branch
``api``); the db service applies them when it starts.
"""

from __future__ import annotations

from typing import Any

import click
from jaseci_like_services.api.service import ApiService

from jaseci_like import CommonService, hookimpl


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [ApiService]


@hookimpl
def jaseci_like_tasks() -> dict[str, Any]:
    from jaseci_like_services.api.background import TASKS

    return dict(TASKS)


@hookimpl
def jaseci_like_commands(cli: click.Group) -> None:
    from jaseci_like_services.api.commands import install

    install(cli)


@hookimpl
def jaseci_like_user_created(session: Any, user: Any) -> list[str]:
    """The new user's first API key, printed once by ``users create``."""
    from jaseci_like_services.api.commands import issue_first_key

    return issue_first_key(session, user)
