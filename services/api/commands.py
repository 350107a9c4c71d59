"""`jaseci-like api-keys ...`, and the first key printed by `jaseci-like users create`.

Keys are issued here, on the command line only, and shown once: the token is
printed and forgotten; only its hash is stored. Commands act as the local
operator (a superadmin) unless ``--as USER`` names someone else, and follow the
same rule as the API: a user's keys are theirs, their domain admins' and a
superadmin's to see, issue and revoke.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import click
from jaseci_like_services.api.db_source import ApiDbSource
from jaseci_like_services.api.keys import ApiKeys
from jaseci_like_services.api.types import IssuedKey, user_key
from jaseci_like_services.group_config.commands import (
    Session,
    acting_options,
    running,
)
from jaseci_like_services.group_config.types import User

from jaseci_like.cli.main import handle_errors
from jaseci_like.cli.output import echo_table
from jaseci_like.repository import OperationMetrics, Resilience

T = TypeVar("T")


def _keys(started: Session) -> ApiKeys:
    """Keys over the db service of this command's runtime (no HTTP server needed)."""
    engine = started.runtime.meta.get_service("db", started.runtime.hook).app
    return ApiKeys(ApiDbSource(engine), Resilience(OperationMetrics("api")), started.app.users)


def _run(started: Session, coro: Coroutine[Any, Any, T]) -> T:
    return started.runtime.meta.loop.run(coro)


def shown_once(issued: IssuedKey) -> list[str]:
    return [
        f"api key: {issued.token}",
        f"(key id {issued.info.id}; shown once, store it now: only its hash is kept)",
    ]


def issue_first_key(started: Session, user: User) -> list[str]:
    """The step `users create` runs: the new user's first key."""
    issued = _run(started, _keys(started).issue(user.id, actor=started.actor, label="first"))
    return shown_once(issued)


@click.group("api-keys")
def api_keys_group() -> None:
    """API keys: issue (shown once), list, revoke."""


@api_keys_group.command("create")
@acting_options
@click.argument("user")
@click.option("--label", help="A note to tell the key apart (e.g. 'ci').")
@handle_errors
def keys_create(
    config_file: str | None, profile: str | None, as_user: str | None, user: str, label: str | None
) -> None:
    """Issue a new key for USER (email or UUID) and print it, once."""
    with running(config_file, profile, as_user) as started:
        issued = _run(
            started, _keys(started).issue(user_key(user), actor=started.actor, label=label)
        )
    for line in shown_once(issued):
        click.echo(line)


@api_keys_group.command("list")
@acting_options
@click.argument("user", required=False)
@handle_errors
def keys_list(
    config_file: str | None, profile: str | None, as_user: str | None, user: str | None
) -> None:
    """List the keys of USER (default: every key the acting user may see); never a secret."""
    with running(config_file, profile, as_user) as started:
        found = _run(
            started,
            _keys(started).list(user_key(user) if user else None, actor=started.actor),
        )
    echo_table(
        ["ID", "USER", "LABEL", "CREATED", "REVOKED"],
        [
            [
                k.id,
                str(k.user_id),
                k.label or "-",
                k.created_at.isoformat(timespec="seconds"),
                k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-",
            ]
            for k in found
        ],
    )


@api_keys_group.command("revoke")
@acting_options
@click.argument("key_id")
@handle_errors
def keys_revoke(
    config_file: str | None, profile: str | None, as_user: str | None, key_id: str
) -> None:
    """Revoke key KEY_ID (from `api-keys list`); requests with it get 401 from now on."""
    with running(config_file, profile, as_user) as started:
        revoked = _run(started, _keys(started).revoke(key_id, actor=started.actor))
    click.echo(f"revoked {revoked.id}")


def install(cli: click.Group) -> None:
    """Add `api-keys` (the first key of `users create` is the plugin's
    ``jaseci_like_user_created`` hook)."""
    cli.add_command(api_keys_group)
