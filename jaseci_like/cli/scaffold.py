"""``jaseci-like new-plugin NAME``: write a plugin distribution to start from."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from jaseci_like.config.secrets import mask_url
from jaseci_like.errors import JaseciLikeError


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=True,
    help="Folder to write the distribution into (as jaseci-like-NAME).",
)
def new_plugin(name: str, directory: Path) -> None:
    """Write plugin NAME: a service with a config schema and a secret, a command,
    a profile, and tests using jaseci_like.testing that pass as written."""
    from jaseci_like.scaffold import write_plugin

    try:
        project = write_plugin(name, directory)
    except JaseciLikeError as exc:
        click.echo(f"error: {mask_url(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    click.echo(f"wrote {project}")
    click.echo(f"next: pip install -e '{project}[test]' && (cd {project} && pytest)")
