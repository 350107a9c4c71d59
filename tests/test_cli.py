"""The real ``jaseci-like`` console script, run in subprocesses.

Exit codes (from ``jaseci_like/cli/main.py``): 0 success, 2 usage, 3 configuration
error, 4 plugin or registry error, 5 a service failed to start.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.plugin_fixtures import (
    FREE_API_PORT,
    STOP_BOUND,
    Cli,
    PluginSites,
    marker_env,
    parse_table,
)

pytest_plugins = ["tests.plugin_fixtures"]

DEMO_SERVICES = ("demo", "demo_child")
SECRET = "hunter2-55713"
SECRET_URL = f"demo://bob:{SECRET}@cache.example:6379/0"


def write_config(folder: Path, doc: Mapping[str, Any] | str, name: str = "app.yaml") -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(dict(doc)))
    return path


def rows_by(key: str, lines: Sequence[str]) -> dict[str, dict[str, str]]:
    return {row[key]: row for row in parse_table(lines)}


def one_error_line(stderr: str) -> str:
    """The only line on stderr, which must say ``error: ...``."""
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one error line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def no_traceback(*outputs: str) -> None:
    for text in outputs:
        assert "Traceback" not in text, text


# -- up ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["--profile", "embedded"]], ids=["no-profile", "embedded"])
def test_up_on_the_embedded_default_shows_every_state_then_ready(cli: Cli, args: list[str]) -> None:
    with cli.serve("up", *args, env=FREE_API_PORT) as up:
        lines = up.wait_for_line("ready:")
        rows = parse_table(lines)
        assert rows, f"no service table before the ready line:\n{up.describe()}"
        for row in rows:
            expected = "RUNNING" if row["ENABLED"] == "yes" else "NOT_STARTED"
            assert row["STATE"] == expected, row
        running = sum(row["STATE"] == "RUNNING" for row in rows)
        assert lines[-1].startswith(f"ready: {running} service(s) running")
        took = up.signal_and_wait(signal.SIGTERM)
    assert up.proc.returncode == 0, up.describe()
    assert took < STOP_BOUND
    no_traceback(up.stdout, up.stderr)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_stops_everything_in_reverse_order_within_the_bound(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path, sig: signal.Signals
) -> None:
    markers = tmp_path / "markers"
    env = {**marker_env(markers, *DEMO_SERVICES), **FREE_API_PORT}
    with cli.serve("up", env=env, sites=[plugin_sites.good]) as up:
        states = rows_by("SERVICE", up.wait_for_line("ready:"))
        assert states["demo"]["STATE"] == "RUNNING"
        assert states["demo_child"]["STATE"] == "RUNNING"
        assert not (markers / "demo.stopped").exists()
        took = up.signal_and_wait(sig)
    assert up.proc.returncode == 0, up.describe()
    assert took < STOP_BOUND, f"{sig.name} to exit took {took:.2f}s"
    after = up.stdout.split("ready:", 1)[1].splitlines()[1:]
    # demo_child needs demo: it started second, so it stops first, daemon included.
    assert after[:2] in (
        ["teardown demo_child", "daemon demo_child exited"],
        ["daemon demo_child exited", "teardown demo_child"],
    ), after
    assert set(after[2:4]) == {"teardown demo", "daemon demo exited"}, after
    assert after[4].startswith("stopped in"), after
    assert (markers / "demo.stopped").exists()
    assert (markers / "demo_child.stopped").exists()
    no_traceback(up.stdout, up.stderr)


# -- status, config, plugins ---------------------------------------------------------------------


def test_status_prints_states_and_health(cli: Cli, plugin_sites: PluginSites) -> None:
    done = cli.run("status", "--local", env=FREE_API_PORT, sites=[plugin_sites.good])
    assert done.returncode == 0, done.stderr
    rows = rows_by("SERVICE", done.stdout.splitlines())
    assert (rows["demo"]["STATE"], rows["demo"]["HEALTH"]) == ("RUNNING", "ok")
    as_json = cli.run("status", "--local", "--json", env=FREE_API_PORT, sites=[plugin_sites.good])
    assert as_json.returncode == 0, as_json.stderr
    # The demo services print their teardown after the JSON document.
    document, _ = json.JSONDecoder().raw_decode(as_json.stdout)
    parsed = {row["name"]: row for row in document}
    assert parsed["demo"]["state"] == "RUNNING"
    assert parsed["demo"]["healthy"] is True
    assert parsed["demo"]["daemons"] == ["ticker"]


def test_config_show_names_the_origin_of_every_value(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"demo": {"port": 7200, "tags": ["from-file"]}})
    env = {
        "JASECI_LIKE__DEMO__TAGS": '["x", "y"]',
        "JASECI_LIKE__DEMO__RETRY__ATTEMPTS": "5",
    }
    args = ["config", "show", "demo", "--config", str(config), "--profile", "demo-loud"]
    done = cli.run(*args, "--origin", env=env, sites=[plugin_sites.good])
    assert done.returncode == 0, done.stderr
    rows = rows_by("KEY", done.stdout.splitlines())
    assert rows["demo.interval"]["ORIGIN"] == "default"
    assert rows["demo.url"]["ORIGIN"] == "schema default"
    assert json.loads(rows["demo.greeting"]["VALUE"]) == "HELLO"
    assert rows["demo.greeting"]["ORIGIN"].startswith("profile demo-loud ")
    assert json.loads(rows["demo.port"]["VALUE"]) == 7200
    assert rows["demo.port"]["ORIGIN"] == f"file {config}"
    assert json.loads(rows["demo.tags"]["VALUE"]) == ["x", "y"]
    assert rows["demo.tags"]["ORIGIN"] == "env JASECI_LIKE__DEMO__TAGS"
    assert rows["demo.retry.attempts"]["VALUE"] == "5"
    assert rows["demo.retry.attempts"]["ORIGIN"] == "env JASECI_LIKE__DEMO__RETRY__ATTEMPTS"
    assert rows["demo.retry.backoff"]["ORIGIN"] == "default"
    plain = cli.run(*args, env=env, sites=[plugin_sites.good])
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.split()[:2] == ["KEY", "VALUE"]
    assert "ORIGIN" not in plain.stdout


def test_config_get_prints_one_value_as_json(cli: Cli, plugin_sites: PluginSites) -> None:
    env = {"JASECI_LIKE__DEMO__RETRY__ATTEMPTS": "5"}
    for key, expected in [
        ("demo.port", 7000),
        ("demo.retry.attempts", 5),
        ("demo.retry", {"attempts": 5, "backoff": 0.5}),
        ("demo_child.tags", []),
    ]:
        done = cli.run("config", "get", key, env=env, sites=[plugin_sites.good])
        assert done.returncode == 0, (key, done.stderr)
        assert json.loads(done.stdout) == expected, key


@pytest.mark.parametrize(
    ("key", "fragments"),
    [
        ("demo.nosuch", ["'demo.nosuch'", "no such key"]),
        ("demo", ["SERVICE.KEY"]),
        ("nosuch.port", ["'nosuch'"]),
    ],
)
def test_config_get_of_an_unknown_key_is_a_config_error(
    cli: Cli, plugin_sites: PluginSites, key: str, fragments: list[str]
) -> None:
    done = cli.run("config", "get", key, sites=[plugin_sites.good])
    assert done.returncode == 3, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr
    no_traceback(done.stdout, done.stderr)


def test_config_set_stores_a_valid_value_in_the_embedded_store(
    cli: Cli, plugin_sites: PluginSites
) -> None:
    sites = [plugin_sites.good]
    done = cli.run("config", "set", "demo.port", "7400", sites=sites)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("demo.port stored")
    listed = cli.run("config", "set", "demo.tags", '["a", "b"]', sites=sites)
    assert listed.returncode == 0, listed.stderr
    # The embedded default keeps config in its SQLite store: another process sees it.
    port = cli.run("config", "get", "demo.port", sites=sites)
    assert (port.returncode, port.stdout.strip()) == (0, "7400"), port.stderr
    shown = cli.run("config", "show", "demo", "--origin", sites=sites)
    rows = rows_by("KEY", shown.stdout.splitlines())
    assert rows["demo.port"]["ORIGIN"] == "stored"
    assert json.loads(rows["demo.tags"]["VALUE"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("key", "value", "fragments"),
    [
        ("demo.port", "abc", ["demo.port", "'abc'", "config_set"]),
        ("demo.colour", "red", ["demo.colour", "'red'", "unknown key"]),
        ("demo.retry.attempts", "0", ["demo.retry.attempts", "'0'"]),
        ("nosuch.port", "1", ["unknown config name 'nosuch'"]),
        ("demo.tags", "[1,", ["demo.tags", "not valid JSON"]),
        ("demo.password", "[oops", ["demo.password", "not valid JSON"]),
    ],
)
def test_config_set_refuses_an_invalid_value(
    cli: Cli, plugin_sites: PluginSites, key: str, value: str, fragments: list[str]
) -> None:
    sites = [plugin_sites.good]
    done = cli.run("config", "set", key, value, sites=sites)
    assert done.returncode == 3, done.stderr
    line = one_error_line(done.stderr)
    for fragment in fragments:
        assert fragment in line
    assert "[oops" not in line  # a secret key's value is never echoed
    no_traceback(done.stdout, done.stderr)
    # Nothing was stored: the effective config is what it was.
    after = cli.run("config", "show", "demo", sites=sites)
    assert after.returncode == 0, after.stderr
    rows = rows_by("KEY", after.stdout.splitlines())
    assert json.loads(rows["demo.port"]["VALUE"]) == 7000
    assert json.loads(rows["demo.retry.attempts"]["VALUE"]) == 3
    assert "demo.colour" not in rows


# -- secrets -----------------------------------------------------------------------------------


def test_secrets_are_masked_in_show_get_errors_and_logs(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path
) -> None:
    sites = [plugin_sites.good]
    config = write_config(tmp_path, {"demo": {"password": SECRET, "url": SECRET_URL}})
    masked_url = "demo://bob:***@cache.example:6379/0"
    shown = cli.run("config", "show", "--config", str(config), "--origin", sites=sites)
    assert shown.returncode == 0, shown.stderr
    rows = rows_by("KEY", shown.stdout.splitlines())
    assert json.loads(rows["demo.password"]["VALUE"]) == "***"
    assert json.loads(rows["demo.url"]["VALUE"]) == masked_url
    got = cli.run("config", "get", "demo.password", "--config", str(config), sites=sites)
    assert json.loads(got.stdout) == "***"
    got_url = cli.run("config", "get", "demo.url", "--config", str(config), sites=sites)
    assert json.loads(got_url.stdout) == masked_url
    bad = write_config(tmp_path, {"demo": {"port": SECRET_URL, "password": 55713}}, "bad.yaml")
    refused = cli.run("up", "--config", str(bad), sites=sites)
    assert refused.returncode == 3
    assert masked_url in refused.stderr
    assert "demo.password = '***'" in refused.stderr
    assert "55713" not in refused.stderr
    with cli.serve(
        "--log-level", "info", "up", "--config", str(config), env=FREE_API_PORT, sites=sites
    ) as up:
        up.wait_for_line("ready:")
        up.signal_and_wait(signal.SIGTERM)
    assert f"demo connecting to {masked_url}" in up.stderr, up.describe()
    for done in (shown, got, got_url, refused):
        assert SECRET not in done.stdout + done.stderr
    assert SECRET not in up.stdout + up.stderr


def test_the_plugins_command_lists_what_each_plugin_gives(
    cli: Cli, plugin_sites: PluginSites
) -> None:
    done = cli.run("plugins", sites=[plugin_sites.good])
    assert done.returncode == 0, done.stderr
    rows = rows_by("PLUGIN", done.stdout.splitlines())
    assert (rows["demo"]["STATUS"], rows["demo"]["SERVICES"]) == ("loaded", "demo,demo_child")
    assert rows["profiles"]["STATUS"] == "loaded"


# -- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["up", "--no-such-option"], ["no-such-command"], ["config", "get"], ["status", "extra"]],
    ids=["option", "command", "missing-argument", "extra-argument"],
)
def test_a_usage_error_exits_2(cli: Cli, args: list[str]) -> None:
    done = cli.run(*args)
    assert done.returncode == 2, done.stderr
    assert "Usage:" in done.stderr
    no_traceback(done.stdout, done.stderr)


def test_a_registry_error_exits_4_before_anything_starts(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    sites = [plugin_sites.good, plugin_sites.orphan]
    done = cli.run("up", env=marker_env(markers, *DEMO_SERVICES), sites=sites)
    assert done.returncode == 4, done.stderr
    line = one_error_line(done.stderr)
    assert "'orphan'" in line
    assert "'jl_nobody_provides_this'" in line
    assert list(markers.iterdir()) == []
    no_traceback(done.stdout, done.stderr)


def test_a_service_that_fails_to_start_exits_5_and_says_which(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    env = {
        **marker_env(markers, *DEMO_SERVICES),
        **FREE_API_PORT,
        "JASECI_LIKE__DEMO__FAIL": "true",
    }
    done = cli.run("up", env=env, sites=[plugin_sites.good])
    assert done.returncode == 5, done.stderr
    rows = rows_by("SERVICE", done.stdout.splitlines())
    assert rows["demo"]["STATE"] == "FAILED"
    assert rows["demo_child"]["STATE"] != "RUNNING"
    assert "demo was told to fail" in done.stderr
    assert "ready:" not in done.stdout
    assert not (markers / "demo_child.started").exists()
    no_traceback(done.stdout, done.stderr)
    status = cli.run("status", "--local", env=env, sites=[plugin_sites.good])
    assert status.returncode == 5, status.stderr


# -- bad configuration: one clear line, exit 3, nothing started ---------------------------------


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("yaml-syntax", ["{file}", "line 3", "YAML syntax error"]),
        ("yaml-not-a-mapping", ["{file}", "mapping"]),
        ("wrong-type", ["demo.port = 'not-a-port'", "(from file {file})"]),
        ("wrong-type-second-service", ["demo_child.port = 'x'", "(from file {file})"]),
        ("impossible-value", ["demo.interval = -1", "(from file {file})"]),
        ("nested-value", ["demo.retry.attempts = 0", "(from file {file})"]),
        ("unknown-key", ["demo.colour = 'red'", "(from file {file})", "unknown key"]),
        ("unknown-section", ["section 'nosuch'", "file {file}", "no service"]),
        ("bad-plugins-section", ["plugins.deny", "(from file {file})"]),
        ("bad-runtime-section", ["runtime.stop_timeout", "(from file {file})"]),
        ("bad-env-value", ["demo.port = 'abc'", "(from env JASECI_LIKE__DEMO__PORT)"]),
        ("bad-env-json", ["JASECI_LIKE__DEMO__TAGS", "not valid JSON"]),
        ("bad-env-name", ["JASECI_LIKE__DEMO", "<SERVICE>__<KEY>"]),
        ("env-unknown-section", ["section 'nosuch'", "JASECI_LIKE__NOSUCH__PORT"]),
        ("unknown-profile", ["unknown profile 'nope'", "embedded"]),
        ("unknown-profile-env", ["unknown profile 'nope'"]),
        ("missing-file", ["{missing}", "no such file"]),
        ("missing-file-env", ["{missing}", "no such file"]),
    ],
)
def test_a_bad_config_exits_3_with_one_line_naming_the_place_and_starts_nothing(
    cli: Cli, plugin_sites: PluginSites, tmp_path: Path, case: str, fragments: list[str]
) -> None:
    markers = tmp_path / "markers"
    env = marker_env(markers, *DEMO_SERVICES)
    missing = tmp_path / "missing.yaml"
    files: dict[str, str] = {
        "yaml-syntax": "demo:\n  port: 7000\n  greeting: hi: there\n",
        "yaml-not-a-mapping": "- demo\n- port\n",
        "wrong-type": "demo:\n  port: not-a-port\n",
        "wrong-type-second-service": "demo_child:\n  port: x\n",
        "impossible-value": "demo:\n  interval: -1\n",
        "nested-value": "demo:\n  retry:\n    attempts: 0\n",
        "unknown-key": "demo:\n  colour: red\n",
        "unknown-section": "nosuch:\n  port: 1\n",
        "bad-plugins-section": "plugins:\n  deny: 5\n",
        "bad-runtime-section": "runtime:\n  stop_timeout: -1\n",
    }
    envs: dict[str, dict[str, str]] = {
        "bad-env-value": {"JASECI_LIKE__DEMO__PORT": "abc"},
        "bad-env-json": {"JASECI_LIKE__DEMO__TAGS": '["a",'},
        "bad-env-name": {"JASECI_LIKE__DEMO": "1"},
        "env-unknown-section": {"JASECI_LIKE__NOSUCH__PORT": "1"},
        "unknown-profile-env": {"JASECI_LIKE_PROFILE": "nope"},
        "missing-file-env": {"JASECI_LIKE_CONFIG": str(missing)},
    }
    args = ["up"]
    file = tmp_path / "app.yaml"
    if case in files:
        file.write_text(files[case])
        args += ["--config", str(file)]
    env.update(envs.get(case, {}))
    if case == "unknown-profile":
        args += ["--profile", "nope"]
    if case == "missing-file":
        args += ["--config", str(missing)]

    done = cli.run(*args, env=env, sites=[plugin_sites.good])

    assert done.returncode == 3, done.stdout + done.stderr
    line = one_error_line(done.stderr)
    for fragment in fragments:
        assert fragment.format(file=file, missing=missing) in line, line
    no_traceback(done.stdout, done.stderr)
    assert "ready:" not in done.stdout
    assert list(markers.iterdir()) == [], "a service started although the config was refused"
