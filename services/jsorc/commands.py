"""`jaseci-like jsorc status`: the keep-alive list, the last pass and what it did.

It reads the status the running jsorc saved in the config store (the
``JSORC_STATUS`` glob); it starts no service of its own.
"""

from __future__ import annotations

import datetime as dt
import json

import click
from jaseci_like_services.jsorc.report import Status, load

from jaseci_like.cli.main import handle_errors, load_runtime, runtime_options
from jaseci_like.cli.output import echo_table


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


@click.group("jsorc")
def jsorc_group() -> None:
    """The keep-alive orchestrator (jsorc)."""


@jsorc_group.command("status")
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print the saved status as JSON.")
@handle_errors
def status(config_file: str | None, profile: str | None, as_json: bool) -> None:
    """The keep-alive list, the last pass and what it did (as saved by the running jsorc)."""
    runtime = load_runtime(config_file, profile)
    try:
        runtime.open_store()  # the status lives where stored config does
        saved = load(runtime.hook)
        config = runtime.meta.builder("jsorc").resolve_config(runtime.hook).values
    finally:
        runtime.stop()
    if as_json:
        click.echo(saved.to_json() if saved is not None else json.dumps(None))
        return
    enabled = "yes" if config.get("enabled") else "no"
    keep_alive = ", ".join(config.get("keep_alive") or []) or "-"
    click.echo(f"enabled: {enabled}; keep alive: {keep_alive}; every {config.get('interval')}s")
    if saved is None:
        click.echo("no pass recorded yet: jsorc has not run where this config store is")
        return
    _echo(saved)


def _echo(saved: Status) -> None:
    click.echo(
        f"last pass: {_when(saved.last_pass_at)} ({saved.role}, pass {saved.passes}, "
        f"{(saved.last_pass_seconds or 0):.2f}s), {len(saved.last_pass)} action(s)"
    )
    rows = []
    for name in saved.keep_alive:
        step = saved.services.get(name)
        rows.append(
            [
                name,
                saved.states.get(name, "-"),
                step.action if step else "-",
                step.outcome if step else "-",
                _when(step.at) if step else "-",
                step.detail if step else "",
            ]
        )
    echo_table(["SERVICE", "STATE", "LAST ACTION", "OUTCOME", "AT", "DETAIL"], rows)
    if saved.recent:
        click.echo()
        click.echo("recent actions:")
        for step in saved.recent:
            click.echo(f"  {_when(step.at)}  {step}")
