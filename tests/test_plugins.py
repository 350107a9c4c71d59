"""Plugins: discovery through entry points, allow/deny lists, broken plugins.

The plugins are real distributions (see ``tests/plugin_dist.py``) installed with
pip into temporary site dirs; in-process tests put those dirs on ``sys.path``,
command-line tests on ``PYTHONPATH``.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from jaseci_like import ConfigError, MetaService, Runtime, ServiceState
from tests import plugin_dist
from tests.plugin_fixtures import (
    FREE_API_PORT,
    STOP_BOUND,
    Cli,
    PluginSites,
    marker_env,
    parse_table,
)

pytest_plugins = ["tests.plugin_fixtures"]

DEMO_SERVICES = ["demo", "demo_child"]


@pytest.fixture(autouse=True)
def private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process runtimes keep their embedded config store in this test's own folder."""
    folder = tmp_path / "xdg-data"
    folder.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


def write_config(folder: Path, doc: Mapping[str, Any]) -> Path:
    path = folder / "app.yaml"
    path.write_text(yaml.safe_dump(dict(doc)))
    return path


def runtime(meta: MetaService, env: Mapping[str, str] | None = None, **kwargs: Any) -> Runtime:
    return Runtime(environ=dict(env or {}), meta=meta, **kwargs)


# -- discovery -------------------------------------------------------------------------------


@pytest.mark.usefixtures("good_plugin")
def test_the_third_party_plugin_and_the_builtin_ones_share_one_entry_point_group() -> None:
    found = {ep.name: ep for ep in entry_points(group="jaseci_like")}
    demo = found[plugin_dist.GOOD]
    assert demo.value == "jl_demo_plugin.plugin"
    assert demo.dist is not None and demo.dist.name == "jl-demo-plugin"
    profiles = found["profiles"]
    assert profiles.value == "jaseci_like_configs.plugin"
    assert profiles.dist is not None and profiles.dist.name == "jaseci-like"


@pytest.mark.usefixtures("good_plugin")
def test_the_third_party_service_is_built_and_started_from_config(
    meta: MetaService, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    config = write_config(
        tmp_path,
        {"demo": {"greeting": "bonjour", "port": 7300, "marker_dir": str(markers)}},
    )
    rt = runtime(meta, FREE_API_PORT, config_file=config)
    info = rt.plugins.infos[plugin_dist.GOOD]
    assert (info.status, info.services) == ("loaded", DEMO_SERVICES)
    assert "jl-demo-plugin" in info.source
    hook = rt.start()
    demo = hook.services["demo"]
    assert type(demo).__module__ == "jl_demo_plugin.service"
    assert demo.is_running()
    assert demo.app.greeting == "bonjour"
    assert demo.config["port"] == 7300
    assert demo.daemon_names() == ["ticker"]
    assert (markers / "demo.started").read_text() == "started"
    child = hook.services["demo_child"]
    assert child.is_running()
    assert child.config["greeting"] == "hello"  # the packaged default of its own section
    assert rt.stop() == []
    assert demo.state is ServiceState.STOPPED
    assert demo.app is None
    assert demo.daemon_names() == []
    assert (markers / "demo.stopped").exists()


def test_the_third_party_service_is_started_by_jaseci_like_up(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    config = write_config(tmp_path, {"demo": {"greeting": "bonjour", "port": 7300}})
    env = {**marker_env(markers, *DEMO_SERVICES), **FREE_API_PORT}
    with cli.serve("up", "--config", str(config), env=env, sites=[plugin_sites.good]) as up:
        shown = parse_table(up.wait_for_line("ready:"))
        states = {row["SERVICE"]: row["STATE"] for row in shown}
        assert (states["demo"], states["demo_child"]) == ("RUNNING", "RUNNING")
        assert (markers / "demo.started").exists()
        took = up.signal_and_wait(signal.SIGTERM)
    assert up.proc.returncode == 0, up.describe()
    assert took < STOP_BOUND
    assert (markers / "demo.stopped").exists()
    assert (markers / "demo_child.stopped").exists()


def test_a_plugin_adds_a_command_and_a_profile(cli: Cli, plugin_sites: PluginSites) -> None:
    hello = cli.run("demo-hello", sites=[plugin_sites.good])
    assert (hello.returncode, hello.stdout.strip()) == (0, "hello from the demo plugin")
    loud = cli.run(
        "config", "get", "demo.greeting", "--profile", "demo-loud", sites=[plugin_sites.good]
    )
    assert (loud.returncode, loud.stdout.strip()) == (0, '"HELLO"'), loud.stderr
    denied = cli.run(
        "demo-hello", env={"JASECI_LIKE__PLUGINS__DENY": "demo"}, sites=[plugin_sites.good]
    )
    assert denied.returncode == 2
    assert "demo-hello" in denied.stderr


def test_plugins_add_lines_to_users_create(cli: Cli, plugin_sites: PluginSites) -> None:
    """The ``jaseci_like_user_created`` hook: the demo plugin's line, and the api plugin's
    first key; a denied plugin adds nothing (denied first: the data directory is new)."""
    denied = cli.run(
        "users",
        "create",
        "other@acme.test",
        env={"JASECI_LIKE__PLUGINS__DENY": "api"},
        sites=[plugin_sites.good],
    )
    assert denied.returncode == 0, denied.stderr
    assert "demo welcomes other@acme.test" in denied.stdout
    assert "api key" not in denied.stdout
    done = cli.run("users", "create", "new@acme.test", sites=[plugin_sites.good])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[1] == "new@acme.test"
    assert "demo welcomes new@acme.test" in lines
    assert sum(line.startswith("api key: jlk_") for line in lines) == 1, done.stdout


# -- the built-in plugins ----------------------------------------------------------------------


@pytest.mark.usefixtures("good_plugin")
def test_the_builtin_profiles_plugin_is_loaded_from_its_entry_point(meta: MetaService) -> None:
    rt = runtime(meta, profile="embedded")
    info = rt.plugins.infos["profiles"]
    assert info.status == "loaded"
    assert info.source == "jaseci_like_configs.plugin (jaseci-like)"
    profiles = rt.plugins.profiles()
    assert {"embedded", "demo-loud"} <= set(profiles)
    assert rt.profile == "embedded"


def test_the_plugins_command_lists_builtin_and_third_party_plugins(
    cli: Cli, plugin_sites: PluginSites
) -> None:
    done = cli.run("plugins", sites=[plugin_sites.good])
    assert done.returncode == 0, done.stderr
    rows = {row["PLUGIN"]: row for row in parse_table(done.stdout.splitlines())}
    assert rows["profiles"]["STATUS"] == "loaded"
    assert rows["profiles"]["SOURCE"] == "jaseci_like_configs.plugin (jaseci-like)"
    assert rows["demo"]["STATUS"] == "loaded"
    assert rows["demo"]["SERVICES"] == "demo,demo_child"
    assert rows["demo"]["SOURCE"] == "jl_demo_plugin.plugin (jl-demo-plugin)"


@pytest.mark.usefixtures("good_plugin")
def test_a_denied_builtin_plugin_is_gone_like_any_other(meta: MetaService) -> None:
    with pytest.raises(ConfigError, match="unknown profile 'embedded'"):
        runtime(meta, {"JASECI_LIKE__PLUGINS__DENY": "profiles"}, profile="embedded")


# -- allow and deny ------------------------------------------------------------------------------

ADMISSION = [
    pytest.param({"plugins": {"deny": ["demo"]}}, {}, "denied", id="file-deny"),
    pytest.param({}, {"JASECI_LIKE__PLUGINS__DENY": "demo"}, "denied", id="env-deny"),
    pytest.param({}, {"JASECI_LIKE__PLUGINS__DENY": "other, demo"}, "denied", id="env-deny-csv"),
    pytest.param({}, {"JASECI_LIKE__PLUGINS__DENY": '["demo"]'}, "denied", id="env-deny-json"),
    pytest.param(
        {"plugins": {"allow": ["profiles", "db", "redis"]}}, {}, "not allowed", id="file-allow"
    ),
    pytest.param(
        {}, {"JASECI_LIKE__PLUGINS__ALLOW": "profiles,db,redis"}, "not allowed", id="env-allow"
    ),
    pytest.param(
        {"plugins": {"allow": ["demo", "profiles", "db", "redis"]}},
        {"JASECI_LIKE__PLUGINS__DENY": "demo"},
        "denied",
        id="deny-beats-allow",
    ),
]


@pytest.mark.usefixtures("good_plugin")
@pytest.mark.parametrize(("file", "env", "status"), ADMISSION)
def test_allow_and_deny_lists_keep_a_plugin_out(
    meta: MetaService,
    tmp_path: Path,
    file: dict[str, Any],
    env: dict[str, str],
    status: str,
) -> None:
    allow_lists = ("JASECI_LIKE__PLUGINS__ALLOW" in env, "allow" in file.get("plugins", {}))
    api = {} if any(allow_lists) else FREE_API_PORT  # none of the allow lists has the api
    rt = runtime(meta, {**env, **api}, config_file=write_config(tmp_path, file))
    assert rt.plugins.infos[plugin_dist.GOOD].status == status
    assert rt.plugins.infos["profiles"].status == "loaded"
    assert not set(DEMO_SERVICES) & set(meta.service_names())
    # Kept out means never imported, not imported and ignored.
    assert "jl_demo_plugin.plugin" not in sys.modules
    hook = rt.start()
    assert "demo" not in hook.services
    rt.stop()


def test_deny_from_the_environment_reaches_the_command_line(
    cli: Cli, plugin_sites: PluginSites
) -> None:
    env = {"JASECI_LIKE__PLUGINS__DENY": "demo"}
    listed = cli.run("plugins", env=env, sites=[plugin_sites.good])
    assert listed.returncode == 0, listed.stderr
    rows = {row["PLUGIN"]: row for row in parse_table(listed.stdout.splitlines())}
    assert rows["demo"]["STATUS"] == "denied"
    assert rows["demo"]["SERVICES"] == "-"
    shown = cli.run("config", "show", "demo", env=env, sites=[plugin_sites.good])
    assert shown.returncode == 3
    assert "'demo'" in shown.stderr


def test_deny_from_the_config_file_reaches_the_command_line(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"plugins": {"deny": ["demo"]}})
    listed = cli.run("plugins", "--config", str(config), sites=[plugin_sites.good])
    assert listed.returncode == 0, listed.stderr
    rows = {row["PLUGIN"]: row for row in parse_table(listed.stdout.splitlines())}
    assert rows["demo"]["STATUS"] == "denied"


def test_denying_a_plugin_that_breaks_the_registry_lets_the_runtime_start(
    cli: Cli, plugin_sites: PluginSites
) -> None:
    sites = [plugin_sites.good, plugin_sites.orphan]
    refused = cli.run("status", "--local", sites=sites)
    assert refused.returncode == 4, refused.stderr
    assert "jl_nobody_provides_this" in refused.stderr
    denied = cli.run(
        "status",
        "--local",
        env={"JASECI_LIKE__PLUGINS__DENY": "orphan", **FREE_API_PORT},
        sites=sites,
    )
    assert denied.returncode == 0, denied.stderr
    states = {row["SERVICE"]: row["STATE"] for row in parse_table(denied.stdout.splitlines())}
    assert states["demo"] == "RUNNING"
    assert "orphan" not in states


# -- broken plugins -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "why"), sorted(plugin_dist.BROKEN_ERRORS.items()))
def test_a_broken_plugin_is_reported_by_name_and_the_good_one_still_runs(
    all_plugins: PluginSites, meta: MetaService, name: str, why: str
) -> None:
    rt = runtime(meta, FREE_API_PORT)
    info = rt.plugins.infos[name]
    assert info.status == "broken"
    assert info.error is not None and why in info.error
    assert "\n" not in info.error, "one line per plugin in the `plugins` table"
    assert rt.plugins.pm.get_plugin(name) is None
    good = rt.plugins.infos[plugin_dist.GOOD]
    assert (good.status, good.services) == ("loaded", DEMO_SERVICES)
    assert meta.builder("demo").__module__ == "jl_demo_plugin.service"
    assert "not_a_service" not in meta.service_names()
    hook = rt.start()
    assert hook.services["demo"].is_running()
    rt.stop()


def test_the_plugins_command_reports_every_broken_plugin(
    cli: Cli, plugin_sites: PluginSites
) -> None:
    done = cli.run("plugins", sites=[plugin_sites.good, plugin_sites.broken])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    rows = {row["PLUGIN"]: row for row in parse_table(done.stdout.splitlines())}
    for name, why in plugin_dist.BROKEN_ERRORS.items():
        assert rows[name]["STATUS"] == "broken", name
        assert why in rows[name]["ERROR"], (name, rows[name])
    assert rows["demo"]["STATUS"] == "loaded"
    assert rows["profiles"]["STATUS"] == "loaded"
    # Every line of the table is a whole row: no error message spills over lines.
    statuses = {row["STATUS"] for row in rows.values()}
    assert statuses <= {"loaded", "denied", "not allowed", "broken"}, rows


def test_up_serves_the_good_plugin_next_to_broken_ones(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    sites = [plugin_sites.good, plugin_sites.broken]
    env = {**marker_env(markers, *DEMO_SERVICES), **FREE_API_PORT}
    with cli.serve("up", env=env, sites=sites) as up:
        states = {r["SERVICE"]: r["STATE"] for r in parse_table(up.wait_for_line("ready:"))}
        assert states["demo"] == "RUNNING"
        assert states["demo_child"] == "RUNNING"
        took = up.signal_and_wait(signal.SIGTERM)
    assert up.proc.returncode == 0, up.describe()
    assert took < STOP_BOUND
    for name in plugin_dist.BROKEN_ERRORS:
        assert f"plugin {name!r} is broken" in up.stderr, name
    assert "Traceback" not in up.stdout + up.stderr
