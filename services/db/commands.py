"""`jaseci-like db ...` commands."""

from __future__ import annotations

import click
from jaseci_like_services.db.service import DbService

from jaseci_like.cli.main import handle_errors, load_runtime, runtime_options
from jaseci_like.errors import ServiceStartError


@click.group("db")
def db_group() -> None:
    """The database of the db service."""


@db_group.command("upgrade")
@runtime_options
@handle_errors
def upgrade(config_file: str | None, profile: str | None) -> None:
    """Apply pending schema migrations (they also run when the service starts)."""
    runtime = load_runtime(config_file, profile)
    db = runtime.meta.get_service("db", runtime.hook)
    try:
        if not isinstance(db, DbService) or not db.is_running():
            raise ServiceStartError(f"db service is not running: {db.error or db.state.name}")
        revisions = db.upgrade()
        click.echo(f"{db.url}: at {', '.join(sorted(revisions)) or 'no revision'}")
    finally:
        runtime.stop()
