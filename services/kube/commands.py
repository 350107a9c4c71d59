"""`jaseci-like kube ...` commands.

Exit codes (besides the runtime's): 3 an invalid manifest or config, 5 the kube
service is not running, 7 the cluster refused a request or could not be reached,
or holds an object of the manifests that the runtime does not manage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from jaseci_like_services.kube.plan import Action
from jaseci_like_services.kube.service import KubeService

from jaseci_like.cli.main import handle_errors, load_runtime, runtime_options
from jaseci_like.cli.output import echo_table
from jaseci_like.errors import JaseciLikeError, ServiceStartError
from jaseci_like.runtime import describe_error

F = TypeVar("F", bound=Callable[..., Any])


@click.group("kube")
def kube_group() -> None:
    """Kubernetes manifests of the services: render, plan, apply.

    \b
    Exit codes: 3 an invalid manifest or config; 5 the kube service is not
    running; 7 the cluster refused a request or could not be reached, or holds
    an object of the manifests that jaseci-like does not manage.
    """


@contextmanager
def _kube(config_file: str | None, profile: str | None, connect: bool) -> Iterator[KubeService]:
    """A kube service of its own (started when ``connect``), stopped afterwards."""
    runtime = load_runtime(config_file, profile)
    kube: KubeService | None = None
    try:
        runtime.open_store()  # values saved with `config set` count too
        cls = runtime.meta.builder("kube")
        built = cls(runtime.hook)
        if not isinstance(built, KubeService):
            raise ServiceStartError(f"service 'kube' is {type(built).__name__}, not KubeService")
        kube = built
        if connect:
            kube.start(runtime.hook)
            if not kube.is_running():
                raise _not_running(kube)
        yield kube
    finally:
        if kube is not None:
            kube.stop()
        runtime.stop()


def _not_running(kube: KubeService) -> JaseciLikeError:
    if isinstance(kube.error, JaseciLikeError):
        return kube.error  # its own exit code: 3 for a bad manifest, 7 for the cluster
    if not kube.enabled:
        return ServiceStartError(
            "the kube service is disabled: set kube.enabled to true (config file, "
            "`config set kube.enabled true`, or JASECI_LIKE__KUBE__ENABLED=true)"
        )
    return ServiceStartError(f"the kube service did not start: {describe_error(kube.error)}")


def _echo_plan(actions: list[Action]) -> None:
    rows = [[a.verb, a.key.kind, a.key.name, a.key.namespace or "-", a.reason] for a in actions]
    echo_table(["ACTION", "KIND", "NAME", "NAMESPACE", "REASON"], rows)
    click.echo()
    counts: Counter[str] = Counter(a.verb for a in actions)
    verbs = ("create", "patch", "delete", "keep", "unchanged")
    click.echo(", ".join(f"{counts[v]} {v}" for v in verbs))


def _writes_nothing(func: F) -> F:
    """``--dry-run`` on a command that never writes: accepted, so that every
    ``kube render / plan / apply --dry-run`` line reads (and works) the same."""
    return click.option(
        "--dry-run",
        "dry_run",
        is_flag=True,
        expose_value=False,
        help="Accepted for symmetry with apply: this command never writes.",
    )(func)


@kube_group.command("render")
@runtime_options
@_writes_nothing
@handle_errors
def render(config_file: str | None, profile: str | None) -> None:
    """Print the manifests as they would be sent (secrets masked). Needs no cluster."""
    with _kube(config_file, profile, connect=False) as kube:
        click.echo(kube.render(), nl=False)


@kube_group.command("plan")
@runtime_options
@_writes_nothing
@click.option("--force-delete-pvc", is_flag=True, help="Plan deleting dropped claims too.")
@handle_errors
def plan(config_file: str | None, profile: str | None, force_delete_pvc: bool) -> None:
    """Print what apply would create, patch, delete or keep. Sends no write."""
    with _kube(config_file, profile, connect=True) as kube:
        _echo_plan(kube.plan(force_delete_pvc=force_delete_pvc))


@kube_group.command("apply")
@runtime_options
@click.option(
    "--dry-run/--no-dry-run",
    default=None,
    help="Print the plan; send no write (default: kube.dry_run).",
)
@click.option(
    "--force-delete-pvc",
    is_flag=True,
    help="Delete dropped PersistentVolumeClaims (and Namespaces) too: their data is lost.",
)
@handle_errors
def apply(
    config_file: str | None, profile: str | None, dry_run: bool | None, force_delete_pvc: bool
) -> None:
    """Create what is missing, patch what changed, delete what was dropped."""
    with _kube(config_file, profile, connect=True) as kube:
        dry = kube.options.dry_run if dry_run is None else dry_run
        actions = kube.apply(dry_run=dry, force_delete_pvc=force_delete_pvc)
        _echo_plan(actions)
        if dry:
            click.echo("dry run: nothing was changed")
        else:
            click.echo(f"applied: {sum(a.writes for a in actions)} change(s)")
