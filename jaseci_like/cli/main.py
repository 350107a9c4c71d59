"""The ``jaseci-like`` command line: a thin shell over :class:`jaseci_like.Runtime`.

Exit codes: 0 success, 1 unexpected error, 2 usage, 3 configuration error,
4 plugin or registry error, 5 a service failed to start, 6 stop timed out,
7 an external system (the config store, a cluster) refused or could not be reached.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from jaseci_like.cli.output import LOG_FORMATS, LOG_LEVELS, echo_table, setup_logging
from jaseci_like.cli.scaffold import new_plugin
from jaseci_like.cli.signals import StopSignals
from jaseci_like.config.schema import is_freeform, secret_paths
from jaseci_like.config.sealing import new_key
from jaseci_like.config.secrets import mask, mask_url, printable
from jaseci_like.config.sources import json_or_text
from jaseci_like.config_api import ConfigApi, nest
from jaseci_like.errors import ConfigError, JaseciLikeError, PluginError, ServiceStartError
from jaseci_like.runtime import Runtime, ServiceStatus

EXIT_STOP_TIMEOUT = 6
F = TypeVar("F", bound=Callable[..., Any])


def runtime_options(func: F) -> F:
    """``--config`` and ``--profile``, shared by every command that loads the runtime."""
    func = click.option(
        "--profile",
        metavar="NAME",
        help="Profile layered above the packaged defaults (env JASECI_LIKE_PROFILE).",
    )(func)
    func = click.option(
        "--config",
        "config_file",
        metavar="FILE",
        help="YAML config file (env JASECI_LIKE_CONFIG).",
    )(func)
    return func


def load_runtime(config_file: str | None, profile: str | None) -> Runtime:
    return Runtime(config_file=config_file, profile=profile)


def handle_errors(func: F) -> F:
    """Turn runtime errors into one clear line and an exit code; never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except JaseciLikeError as exc:
            click.echo(f"error: {mask_url(str(exc))}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


_LOG_LEVEL_HELP = "Log this level and above (env JASECI_LIKE_LOG_LEVEL)."
_LOG_FORMAT_HELP = (
    "Log lines as text, or as one JSON object each: time, level, logger, message "
    "(env JASECI_LIKE_LOG_FORMAT)."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="warning",
    show_default=True,
    envvar="JASECI_LIKE_LOG_LEVEL",
    help=_LOG_LEVEL_HELP,
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS, case_sensitive=False),
    default="text",
    show_default=True,
    envvar="JASECI_LIKE_LOG_FORMAT",
    help=_LOG_FORMAT_HELP,
)
@click.version_option(package_name="jaseci-like")
def cli(log_level: str, log_format: str) -> None:
    """A plugin-based service container runtime."""
    setup_logging(log_level, log_format)


def _set_logging(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # Runs after the group's own options: what is given after the subcommand wins.
    if value is not None and param.name == "log_level":
        setup_logging(level=value)
    elif value is not None:
        setup_logging(fmt=value)


def accept_global_options_after(group: click.Group) -> None:
    """Let every subcommand of ``group`` (plugins' included) take the logging options
    too, so ``jaseci-like up --log-level info`` works like ``--log-level info up``."""
    for command in group.commands.values():
        taken = {name for p in command.params for name in p.opts}
        for opts, choices, help_text in (
            (["--log-level", "log_level"], LOG_LEVELS, _LOG_LEVEL_HELP),
            (["--log-format", "log_format"], LOG_FORMATS, _LOG_FORMAT_HELP),
        ):
            if opts[0] not in taken:
                option = click.Option(
                    opts,
                    type=click.Choice(choices, case_sensitive=False),
                    expose_value=False,
                    callback=_set_logging,
                    help=help_text,
                )
                command.params.append(option)
        if isinstance(command, click.Group):
            accept_global_options_after(command)


@cli.command()
@runtime_options
@click.option("--strict", is_flag=True, help="Exit 4 before starting when a plugin is broken.")
@handle_errors
def up(config_file: str | None, profile: str | None, strict: bool) -> None:
    """Start every enabled service and serve until SIGINT or SIGTERM."""
    with StopSignals() as stop:
        runtime = load_runtime(config_file, profile)
        if strict:
            refuse_broken_plugins(runtime)
        try:
            runtime.start(role="up")
        except ServiceStartError:
            _print_status(runtime)
            runtime.stop()
            raise
        _print_status(runtime)
        running = [s for s in runtime.services() if s.is_running()]
        # Where to reach the running services that serve HTTP (the API's URL, which
        # may be on a port picked at start); masked like every address printed.
        urls = [
            f"{s.service_name()} at {mask_url(url)}; "
            for s in running
            if isinstance(url := getattr(s, "url", None), str)
            and url.startswith(("http:", "https:"))
        ]
        click.echo(
            f"ready: {len(running)} service(s) running; {''.join(urls)}stop with Ctrl-C or SIGTERM"
        )
        sys.stdout.flush()
        stop.wait()
        began = time.monotonic()
        left = runtime.stop()
        took = time.monotonic() - began
    if left:
        names = ", ".join(s.service_name() for s in left)
        click.echo(f"error: not stopped within {took:.2f}s: {names}", err=True)
        sys.exit(EXIT_STOP_TIMEOUT)
    click.echo(f"stopped in {took:.2f}s")


def _retry(row: ServiceStatus) -> str:
    """The supervisor's plan for a service: when it tries again, or that it gave up."""
    if row.gave_up:
        return "gave up"
    if row.waiting_for is not None:
        return f"after {row.waiting_for}"
    return "-" if row.retry_in is None else f"in {row.retry_in:.1f}s"


def _print_status(runtime: Runtime) -> None:
    rows = [
        [
            s.name,
            "yes" if s.enabled else "no",
            s.state,
            {None: "-", True: "ok", False: "FAIL"}[s.healthy],
            str(s.restarts),
            _retry(s),
            s.error or "",
        ]
        for s in runtime.status()
    ]
    echo_table(["SERVICE", "ENABLED", "STATE", "HEALTH", "RESTARTS", "RETRY", "ERROR"], rows)


@cli.command()
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--local",
    is_flag=True,
    help="Instead: start the services here briefly, check their health, stop them.",
)
@handle_errors
def status(config_file: str | None, profile: str | None, as_json: bool, local: bool) -> None:
    """The live instances sharing the store (up, worker, embedding hosts), each with
    its services, and who leads; starts no service of its own. Exit 5 when a
    service is FAILED or unhealthy, or an instance is lost."""
    if local:
        _local_status(config_file, profile, as_json)
        return
    from jaseci_like.cli.cluster import print_cluster, read_cluster_of

    view = read_cluster_of(load_runtime(config_file, profile))
    print_cluster(view, as_json)
    problems = view.problems()
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        sys.exit(ServiceStartError.exit_code)


def _local_status(config_file: str | None, profile: str | None, as_json: bool) -> None:
    runtime = load_runtime(config_file, profile)
    try:
        runtime.start(strict=False, role=None)
        if as_json:
            click.echo(json.dumps([s.__dict__ for s in runtime.status()], indent=2))
        else:
            _print_status(runtime)
        bad = bool(runtime.failed_services()) or any(s.healthy is False for s in runtime.status())
    finally:
        runtime.stop()
    if bad:
        sys.exit(ServiceStartError.exit_code)


@cli.group("config")
def config_group() -> None:
    """Show, read and change service configuration."""


def _split_key(key: str) -> tuple[str, list[str]]:
    service, _, rest = key.partition(".")
    if not service or not rest or "" in rest.split("."):
        raise ConfigError(f"key {key!r}: expected SERVICE.KEY, for example redis.port")
    if not key.isprintable():  # control characters, bidi overrides, undecodable bytes
        raise ConfigError(f"key {key!r}: only printable characters may name a key")
    return service, rest.split(".")


@config_group.command("show")
@runtime_options
@click.argument("services", nargs=-1)
@click.option("--origin", is_flag=True, help="Say which layer each value came from.")
@handle_errors
def config_show(
    config_file: str | None, profile: str | None, services: tuple[str, ...], origin: bool
) -> None:
    """Print the effective config of SERVICES (all by default), secrets masked."""
    runtime = load_runtime(config_file, profile)
    try:
        runtime.open_store(required=True)
        rows = _config_rows(runtime, services, origin)
    finally:
        runtime.stop()
    echo_table(["KEY", "VALUE", "ORIGIN"] if origin else ["KEY", "VALUE"], rows)


def _config_rows(runtime: Runtime, services: tuple[str, ...], origin: bool) -> list[list[str]]:
    api = ConfigApi(runtime.hook)
    names = list(services) or sorted(runtime.meta.service_names())
    rows = []
    for name in names:
        resolved = api.resolve(name)
        effective = api.config_get(name)
        cls = api.service_class(name)
        section = cls.service_name()
        # One row per leaf, so a nested key shows the layer that set it.
        for path, value in _leaves(mask(effective, paths=secret_paths(cls.config_schema)), ()):
            row = [".".join((section, *path)), json.dumps(value, default=str)]
            if origin:
                known = _has_path(resolved.values, path)
                row.append(resolved.origin_of(path) if known else "schema default")
            rows.append(row)
    return rows


def _leaves(doc: dict[str, Any], prefix: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key in sorted(doc):
        value, path = doc[key], (*prefix, key)
        out.extend(_leaves(value, path) if isinstance(value, dict) and value else [(path, value)])
    return out


def _has_path(doc: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return True


@config_group.command("get")
@runtime_options
@click.argument("key")
@handle_errors
def config_get(config_file: str | None, profile: str | None, key: str) -> None:
    """Print one effective value (SERVICE.KEY), secrets masked."""
    service, path = _split_key(key)
    runtime = load_runtime(config_file, profile)
    try:
        runtime.open_store(required=True)
        api = ConfigApi(runtime.hook)
        value: Any = api.config_get(service)
        paths = secret_paths(api.service_class(service).config_schema)
    finally:
        runtime.stop()
    for part in path:
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(f"key {key!r}: no such key")
        value = value[part]
    click.echo(json.dumps(mask(value, path[-1], paths, tuple(path)), default=str))


@config_group.command("set")
@runtime_options
@click.argument("key")
@click.argument("value")
@handle_errors
def config_set(config_file: str | None, profile: str | None, key: str, value: str) -> None:
    """Store SERVICE.KEY = VALUE after validating it (JSON for lists and mappings;
    for a service without a schema, any JSON value, or else the text itself)."""
    service, path = _split_key(key)
    parsed: Any = value
    if value.lstrip()[:1] in ("[", "{"):
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            shown = printable(repr(mask(value, path[-1])))
            raise ConfigError(f"{key} = {shown}: not valid JSON ({why})") from None
    runtime = load_runtime(config_file, profile)
    try:
        runtime.open_store(required=True)
        api = ConfigApi(runtime.hook)
        if isinstance(parsed, str) and is_freeform(api.service_class(service).config_schema):
            parsed = json_or_text(parsed)  # no schema to convert the text later
        api.config_set(service, nest(path, parsed))
        store = runtime.store_service()
    finally:
        runtime.stop()
    if store is not None:
        click.echo(f"{key} stored")
        return
    # Only reached when no store is configured at all (one that is down fails above).
    sql = runtime.settings.sql_service
    click.echo(f"{key} stored (in memory only)")
    click.echo(
        f"note: no config store is configured ({sql} is disabled or not installed, and "
        f"so is {runtime.settings.cache_service}), so the value applies to this process "
        f"only and is lost when this command exits; enable the {sql} service to keep it.",
        err=True,
    )


@config_group.command("new-secret-key")
def config_new_secret_key() -> None:
    """Print a new key for JASECI_LIKE_SECRET_KEY, which encrypts stored secrets."""
    click.echo(new_key())


@config_group.command("refresh")
@runtime_options
@click.argument("name")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds to wait for every instance to answer.",
)
@handle_errors
def config_refresh(config_file: str | None, profile: str | None, name: str, timeout: float) -> None:
    """Reset service NAME with its stored config in every live instance that runs it
    (never starting it where it does not run); one line per instance. Exit 5 when
    it failed, or did not answer, anywhere."""
    from jaseci_like.cli.cluster import refresh_everywhere

    refresh_everywhere(load_runtime(config_file, profile), name, timeout)


@cli.command()
@runtime_options
@click.option("--strict", is_flag=True, help="Exit 4 when any plugin is broken.")
@click.option("--hooks", is_flag=True, help="Instead: print the hooks a plugin may implement.")
@handle_errors
def plugins(config_file: str | None, profile: str | None, strict: bool, hooks: bool) -> None:
    """List discovered plugins, their versions, what they provide, and why any did not load."""
    if hooks:
        from jaseci_like.plugins.reference import render_hooks

        click.echo(render_hooks())
        return
    runtime = load_runtime(config_file, profile)
    # Call every hook once, so a plugin whose profiles or commands hook raises is
    # shown broken here too, not only where that hook is first used.
    runtime.plugins.profiles()
    runtime.plugins.add_commands(click.Group())
    rows = [
        [i.name, i.version or "-", i.status, ",".join(i.services) or "-", i.source, i.error or ""]
        for i in runtime.plugins.infos.values()
    ]
    echo_table(["PLUGIN", "VERSION", "STATUS", "SERVICES", "SOURCE", "ERROR"], rows)
    if strict:
        refuse_broken_plugins(runtime)


def refuse_broken_plugins(runtime: Runtime) -> None:
    """``--strict``: a broken plugin is an error (exit 4), not a logged line."""
    broken = runtime.plugins.broken()
    if broken:
        names = ", ".join(f"{i.name} ({i.error})" for i in broken)
        raise PluginError(f"broken plugins (--strict): {names}; fix or deny them")


cli.add_command(new_plugin)


def main() -> None:
    """Console-script entry point."""
    try:
        commands = Runtime.command_plugins()
    except JaseciLikeError:
        commands = None
    if commands is not None:
        commands.add_commands(cli)
    accept_global_options_after(cli)
    try:
        cli.main(standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # last resort: one line, no traceback, exit 1
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        click.echo(f"internal error: {mask_url(f'{type(exc).__name__}: {exc}')}", err=True)
        sys.exit(1)
