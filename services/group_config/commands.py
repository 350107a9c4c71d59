"""`jaseci-like dotfiles|groups|users|domains ...`: the group-config service from a shell.

Commands act as the local operator (a superadmin of ``default_domain``) unless
``--as USER`` (an email or a UUID) names a user to act as. Errors are one line
on stderr; exit codes: 7 forbidden, 8 not found, 9 already exists, 10 invalid
input, 11 a limit reached (and the runtime's own: 3 config, 5 start failed).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click
from jaseci_like_services.group_config.types import (
    CurrentUser,
    Dotfile,
    DotfileChanges,
    DotfileSpec,
    Role,
)

from jaseci_like.cli.main import handle_errors, load_runtime, runtime_options
from jaseci_like.cli.output import echo_table
from jaseci_like.errors import ServiceStartError
from jaseci_like.repository import OffsetPagination
from jaseci_like.runtime import Runtime, describe_error

if TYPE_CHECKING:
    from jaseci_like_services.group_config.app import BlockingGroupConfig, GroupConfig

F = TypeVar("F", bound=Callable[..., Any])
SERVICE = "group_config"


@dataclass(frozen=True)
class Session:
    """One command's started group_config service: its app, the blocking facade, the
    acting user, and the runtime (for plugins that add steps to a command)."""

    runtime: Runtime
    app: GroupConfig
    api: BlockingGroupConfig
    actor: CurrentUser


@contextmanager
def running(config_file: str | None, profile: str | None, as_user: str | None) -> Iterator[Session]:
    """The running service and the acting user; everything stopped afterwards."""
    runtime = load_runtime(config_file, profile)
    try:
        runtime.meta.start_services(runtime.hook, [SERVICE])
        service = runtime.meta.get_service(SERVICE, runtime.hook)
        if not service.is_running():
            db = runtime.meta.get_service("db", runtime.hook)
            cause = db.error if db.error is not None else service.error
            why = describe_error(cause) or service.state.name
            raise ServiceStartError(f"{SERVICE} service is not running: {why}")
        app: GroupConfig = service.app
        api = app.sync
        actor = app.system_user() if as_user is None else api.users.identity(_user_key(as_user))
        yield Session(runtime, app, api, actor)
    finally:
        runtime.stop()


@contextmanager
def session(
    config_file: str | None, profile: str | None, as_user: str | None
) -> Iterator[tuple[BlockingGroupConfig, CurrentUser]]:
    """The running service's blocking facade and the acting user; stopped afterwards."""
    with running(config_file, profile, as_user) as started:
        yield started.api, started.actor


def _user_key(value: str) -> uuid.UUID | str:
    """A user named by UUID or by email."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


def acting_options(func: F) -> F:
    """``--config``, ``--profile`` and ``--as``."""
    func = click.option(
        "--as",
        "as_user",
        metavar="USER",
        help="Act as this user (email or UUID) instead of the local operator.",
    )(func)
    return runtime_options(func)


def domain_option(func: F) -> F:
    return click.option(
        "--domain",
        metavar="DOMAIN",
        help="Domain of a group named by name (default: the acting user's).",
    )(func)


def _json(value: Any) -> None:
    click.echo(json.dumps(value, default=str, indent=2, sort_keys=True))


#: Most characters ``--file`` reads (64 Mi; the group's own byte limit applies after).
MAX_FILE_CHARS = 64 << 20


def _read_data(data: str | None, file: str | None) -> str | None:
    if data is not None and file is not None:
        raise click.UsageError("give --data or --file, not both")
    if file is None:
        return data
    # A file that cannot be read as UTF-8 text is the caller's mistake: a usage error
    # naming it, not a traceback. Read at most a bound (/dev/zero never ends).
    try:
        if file == "-":
            text = sys.stdin.read(MAX_FILE_CHARS + 1)
        else:
            with open(file, encoding="utf-8") as handle:
                text = handle.read(MAX_FILE_CHARS + 1)
    except UnicodeDecodeError as exc:
        raise click.BadParameter(
            f"{file}: not UTF-8 text ({exc.reason})", param_hint="--file"
        ) from None
    except OSError as exc:
        raise click.BadParameter(f"{file}: {exc.strerror or exc}", param_hint="--file") from None
    if len(text) > MAX_FILE_CHARS:
        raise click.BadParameter(
            f"{file}: more than {MAX_FILE_CHARS} characters, the most --file reads",
            param_hint="--file",
        )
    return text


# -- dotfiles ---------------------------------------------------------------------------------


@click.group("dotfiles")
def dotfiles_group() -> None:
    """Dotfiles of a group (project)."""


@dotfiles_group.command("list")
@acting_options
@domain_option
@click.argument("group")
@click.option("--prefix", help="Only paths starting with this (taken literally).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def dotfiles_list(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
    prefix: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List the active dotfiles of GROUP (a UUID, or a name in --domain)."""
    with session(config_file, profile, as_user) as (api, actor):
        listing = api.dotfiles.search(
            group,
            path_prefix=prefix,
            pagination=OffsetPagination(limit, offset),
            domain=domain,
            user=actor,
        )
    items = listing.page.items
    if as_json:
        _json(
            {
                "items": [_dotfile_doc(d) for d in items],
                "total_count": listing.page.total_count,
                "leftover_space": listing.leftover_space,
            }
        )
        return
    echo_table(
        ["PATH", "PERM", "BYTES", "UPDATED"],
        [
            [d.path, d.permission, str(len(d.data.encode())), d.updated_at.isoformat()]
            for d in items
        ],
    )
    click.echo()
    click.echo(
        f"{len(items)} of {listing.page.total_count} dotfile(s); "
        f"leftover_space: {listing.leftover_space} bytes"
    )


def _dotfile_doc(d: Dotfile) -> dict[str, Any]:
    doc = asdict(d)
    doc["status"] = d.status.value
    return doc


@dotfiles_group.command("get")
@acting_options
@domain_option
@click.argument("group")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the dotfile as JSON.")
@handle_errors
def dotfiles_get(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
    path: str,
    as_json: bool,
) -> None:
    """Print the data of dotfile PATH of GROUP."""
    with session(config_file, profile, as_user) as (api, actor):
        found = api.dotfiles.get(group, path, domain=domain, user=actor)
    if as_json:
        _json(_dotfile_doc(found))
    else:
        click.echo(found.data, nl=False)


@dotfiles_group.command("create")
@acting_options
@domain_option
@click.argument("group")
@click.argument("path")
@click.option("--data", help="The content.")
@click.option("--file", "file", metavar="FILE", help="Read the content from FILE ('-': stdin).")
@click.option("--perm", "permission", default="644", show_default=True, help="Octal, e.g. 600.")
@handle_errors
def dotfiles_create(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
    path: str,
    data: str | None,
    file: str | None,
    permission: str,
) -> None:
    """Create dotfile PATH in GROUP."""
    content = _read_data(data, file)
    if content is None:
        raise click.UsageError("give the content with --data or --file")
    with session(config_file, profile, as_user) as (api, actor):
        spec = DotfileSpec(path, content, permission)
        result = api.dotfiles.create(group, spec, domain=domain, user=actor)
    click.echo(f"created {result.dotfile.path} (leftover_space: {result.leftover_space} bytes)")


@dotfiles_group.command("update")
@acting_options
@domain_option
@click.argument("group")
@click.argument("path")
@click.option("--data", help="The new content.")
@click.option("--file", "file", metavar="FILE", help="Read the new content from FILE.")
@click.option("--perm", "permission", help="The new permission, e.g. 600.")
@handle_errors
def dotfiles_update(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
    path: str,
    data: str | None,
    file: str | None,
    permission: str | None,
) -> None:
    """Change the content and/or permission of dotfile PATH in GROUP."""
    from jaseci_like.repository import UNSET

    content = _read_data(data, file)
    changes = DotfileChanges(
        data=UNSET if content is None else content,
        permission=UNSET if permission is None else permission,
    )
    with session(config_file, profile, as_user) as (api, actor):
        result = api.dotfiles.update(group, path, changes, domain=domain, user=actor)
    click.echo(f"updated {result.dotfile.path} (leftover_space: {result.leftover_space} bytes)")


@dotfiles_group.command("delete")
@acting_options
@domain_option
@click.argument("group")
@click.argument("path")
@click.option("--purge", is_flag=True, help="Remove it for good, history included.")
@handle_errors
def dotfiles_delete(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
    path: str,
    purge: bool,
) -> None:
    """Delete dotfile PATH of GROUP."""
    with session(config_file, profile, as_user) as (api, actor):
        if purge:
            api.dotfiles.purge(group, path, domain=domain, user=actor)
        else:
            api.dotfiles.delete(group, path, domain=domain, user=actor)
    click.echo(f"{'purged' if purge else 'deleted'} {path}")


# -- groups -----------------------------------------------------------------------------------


@click.group("groups")
def groups_group() -> None:
    """Groups (projects) and their members."""


@groups_group.command("create")
@acting_options
@domain_option
@click.argument("name")
@handle_errors
def groups_create(
    config_file: str | None, profile: str | None, as_user: str | None, domain: str | None, name: str
) -> None:
    """Create group NAME in --domain (default: the acting user's)."""
    with session(config_file, profile, as_user) as (api, actor):
        group = api.groups.create(name, domain=domain, user=actor)
    click.echo(f"{group.id}  {group.domain}/{group.name}")


@groups_group.command("list")
@acting_options
@domain_option
@handle_errors
def groups_list(
    config_file: str | None, profile: str | None, as_user: str | None, domain: str | None
) -> None:
    """List the groups the acting user may see."""
    with session(config_file, profile, as_user) as (api, actor):
        page = api.groups.search(domain=domain, pagination=OffsetPagination(1000), user=actor)
    echo_table(["ID", "DOMAIN", "NAME"], [[str(g.id), g.domain, g.name] for g in page.items])


@groups_group.command("rename")
@acting_options
@domain_option
@click.argument("group")
@click.argument("name")
@handle_errors
def groups_rename(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
    name: str,
) -> None:
    """Rename GROUP to NAME."""
    with session(config_file, profile, as_user) as (api, actor):
        renamed = api.groups.rename(group, name, domain=domain, user=actor)
    click.echo(f"{renamed.id}  {renamed.domain}/{renamed.name}")


@groups_group.command("delete")
@acting_options
@domain_option
@click.argument("group")
@handle_errors
def groups_delete(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
) -> None:
    """Remove GROUP with its members and dotfiles."""
    with session(config_file, profile, as_user) as (api, actor):
        gone = api.groups.purge(group, domain=domain, user=actor)
    click.echo(f"removed {gone.domain}/{gone.name}")


@groups_group.command("add-member")
@acting_options
@domain_option
@click.argument("group")
@click.argument("member")
@handle_errors
def groups_add_member(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
    member: str,
) -> None:
    """Make user MEMBER (email or UUID) a member of GROUP."""
    with session(config_file, profile, as_user) as (api, actor):
        added = api.groups.add_member(group, _user_key(member), domain=domain, user=actor)
    click.echo(f"{added.email} is a member of {group}")


@groups_group.command("remove-member")
@acting_options
@domain_option
@click.argument("group")
@click.argument("member")
@handle_errors
def groups_remove_member(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
    member: str,
) -> None:
    """Remove user MEMBER from GROUP."""
    with session(config_file, profile, as_user) as (api, actor):
        removed = api.groups.remove_member(group, _user_key(member), domain=domain, user=actor)
    click.echo(f"{removed.email} is no longer a member of {group}")


@groups_group.command("members")
@acting_options
@domain_option
@click.argument("group")
@handle_errors
def groups_members(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    domain: str | None,
    group: str,
) -> None:
    """List the members of GROUP."""
    with session(config_file, profile, as_user) as (api, actor):
        page = api.groups.members(
            group, domain=domain, pagination=OffsetPagination(1000), user=actor
        )
    echo_table(["ID", "EMAIL", "ROLE"], [[str(u.id), u.email, u.role.value] for u in page.items])


# -- users ------------------------------------------------------------------------------------


@click.group("users")
def users_group() -> None:
    """Users: who may act on groups, and in which role."""


@users_group.command("create")
@acting_options
@click.argument("email")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), default=Role.USER.value, show_default=True
)
@click.option("--domain", metavar="DOMAIN", help="Default: the acting user's domain.")
@handle_errors
def users_create(
    config_file: str | None,
    profile: str | None,
    as_user: str | None,
    email: str,
    role: str,
    domain: str | None,
) -> None:
    """Create a user (and, with the api plugin, print their first API key, once)."""
    with running(config_file, profile, as_user) as started:
        user = started.api.users.create(email, role, domain=domain, user=started.actor)
        click.echo(f"{user.id}  {user.email}  {user.role.value}  {user.domain}")
        # What plugins add (the api plugin: the first API key): their hook, in this session.
        for line in started.runtime.plugins.user_created(started, user):
            click.echo(line)


@users_group.command("list")
@acting_options
@click.option("--domain", metavar="DOMAIN")
@handle_errors
def users_list(
    config_file: str | None, profile: str | None, as_user: str | None, domain: str | None
) -> None:
    """List the users the acting user may see."""
    with session(config_file, profile, as_user) as (api, actor):
        page = api.users.search(domain=domain, pagination=OffsetPagination(1000), user=actor)
    echo_table(
        ["ID", "EMAIL", "ROLE", "DOMAIN"],
        [[str(u.id), u.email, u.role.value, u.domain] for u in page.items],
    )


@users_group.command("set-role")
@acting_options
@click.argument("user")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@handle_errors
def users_set_role(
    config_file: str | None, profile: str | None, as_user: str | None, user: str, role: str
) -> None:
    """Give USER (email or UUID) another ROLE."""
    with session(config_file, profile, as_user) as (api, actor):
        changed = api.users.set_role(_user_key(user), role, user=actor)
    click.echo(f"{changed.email} is now {changed.role.value}")


@users_group.command("delete")
@acting_options
@click.argument("user")
@handle_errors
def users_delete(
    config_file: str | None, profile: str | None, as_user: str | None, user: str
) -> None:
    """Remove USER (and their memberships)."""
    with session(config_file, profile, as_user) as (api, actor):
        gone = api.users.purge(_user_key(user), user=actor)
    click.echo(f"removed {gone.email}")


# -- domains ----------------------------------------------------------------------------------


@click.group("domains")
def domains_group() -> None:
    """Domains: what groups and users belong to."""


@domains_group.command("create")
@acting_options
@click.argument("name")
@handle_errors
def domains_create(
    config_file: str | None, profile: str | None, as_user: str | None, name: str
) -> None:
    """Create domain NAME (superadmin only)."""
    with session(config_file, profile, as_user) as (api, actor):
        domain = api.domains.create(name, user=actor)
    click.echo(f"created domain {domain.name}")


@domains_group.command("list")
@acting_options
@handle_errors
def domains_list(config_file: str | None, profile: str | None, as_user: str | None) -> None:
    """List the domains the acting user may see."""
    with session(config_file, profile, as_user) as (api, actor):
        page = api.domains.search(pagination=OffsetPagination(1000), user=actor)
    echo_table(["DOMAIN", "CREATED"], [[d.name, d.created_at.isoformat()] for d in page.items])


@domains_group.command("delete")
@acting_options
@click.argument("name")
@handle_errors
def domains_delete(
    config_file: str | None, profile: str | None, as_user: str | None, name: str
) -> None:
    """Remove the empty domain NAME (superadmin only)."""
    with session(config_file, profile, as_user) as (api, actor):
        api.domains.purge(name, user=actor)
    click.echo(f"removed domain {name}")


COMMANDS = (dotfiles_group, groups_group, users_group, domains_group)
