"""``status`` and ``config refresh`` over the instances sharing the store.

Neither starts a service of its own: they open the shared store (the config store's
services, as ``config show`` does), read or write the registry, and close it.
"""

from __future__ import annotations

import json
import sys
import time

import click

from jaseci_like.cli.output import echo_table
from jaseci_like.cluster.refresh import request_refresh
from jaseci_like.cluster.view import ClusterView, read_cluster
from jaseci_like.config_api import ConfigApi
from jaseci_like.errors import ServiceStartError
from jaseci_like.hooks.orm import StoreUnavailable
from jaseci_like.runtime import Runtime

_HEALTH = {None: "-", True: "ok", False: "FAIL"}


def read_cluster_of(runtime: Runtime) -> ClusterView:
    """The registry of the store ``runtime``'s config names."""
    try:
        runtime.open_store(required=True)
        return read_cluster(runtime.cluster_store())
    finally:
        runtime.stop()


def _started(at: object) -> str:
    if not isinstance(at, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def print_cluster(view: ClusterView, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(view.as_json(), indent=2, default=str))
        return
    leader = view.leader
    led = "none" if leader is None else f"{leader.holder} (lease token {leader.token})"
    click.echo(f"store: {view.store}; instances: {len(view.instances)}; leader: {led}")
    if view.store == "memory":
        click.echo(
            "note: no shared store is configured (the db and redis services are off), so "
            "no other process can be seen",
            err=True,
        )
    if not view.instances:
        click.echo(
            "note: no instance is running on this store: `jaseci-like up` starts one; "
            "`jaseci-like status --local` starts this config here once and shows each service",
            err=True,
        )
        return
    rows = []
    for i in view.instances:
        r = i.record
        seen = f"LOST {i.age:.1f}s ago" if i.lost else f"{i.age:.1f}s ago"
        duties = ",".join(r.get("duties") or [])
        lead = ("yes" + (f" ({duties})" if duties else "")) if view.leads(i) else "no"
        rows.append(
            [
                i.id,
                str(r.get("role")),
                str(r.get("host")),
                str(r.get("pid")),
                str(r.get("version")),
                _started(r.get("started_at")),
                seen,
                str(r.get("api_url") or "-"),
                lead,
            ]
        )
    echo_table(
        ["INSTANCE", "ROLE", "HOST", "PID", "VERSION", "STARTED", "SEEN", "API", "LEADER"], rows
    )
    click.echo()
    services = [
        [
            i.id,
            str(s.get("name")),
            str(s.get("state")),
            _HEALTH.get(s.get("healthy"), "-"),
            str(s.get("restarts") or 0),
            str(s.get("error") or s.get("last_error") or ""),
        ]
        for i in view.instances
        for s in i.services()
    ]
    echo_table(["INSTANCE", "SERVICE", "STATE", "HEALTH", "RESTARTS", "ERROR"], services)


def refresh_everywhere(runtime: Runtime, name: str, timeout: float) -> None:
    """``config refresh NAME``: one line per live instance; exit 5 if any failed."""
    try:
        runtime.open_store(required=True)
        ConfigApi(runtime.hook).service_class(name)  # an unknown name: ConfigError, exit 3
        store = runtime.cluster_store()
        if store.kind == "memory":
            raise StoreUnavailable(
                f"{name}: no shared store is configured (the db and redis services are "
                "off), so no running process can be reached; restart them to apply config"
            )
        outcomes = request_refresh(store, name, timeout)
    finally:
        runtime.stop()
    if not outcomes:
        click.echo(f"{name}: no live instance shares this store; stored config applies at start")
        return
    echo_table(
        ["INSTANCE", "HOST", "ROLE", "OUTCOME", "DETAIL"],
        [[o.instance, o.host, o.role, o.outcome, o.detail] for o in outcomes],
    )
    bad = [o for o in outcomes if not o.ok]
    if bad:
        click.echo(
            f"error: {name}: the refresh failed or got no answer in {len(bad)} of "
            f"{len(outcomes)} instance(s)",
            err=True,
        )
        sys.exit(ServiceStartError.exit_code)
