"""ConfigApi and the ``jaseci-like config`` commands on the durable store.

Runtimes are real (built-in ``db`` and ``redis`` plugins plus the ``probe`` test
plugin), on SQLite and on PostgreSQL, with the fixture redis-server. Every layer
is inspected directly: SQL rows with raw statements, the Redis hash with a raw
client, and the hook's memory.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from jaseci_like import ConfigApi, ConfigError, Runtime, ServiceStartError, ServiceState
from tests import plugin_dist
from tests.plugin_fixtures import console_script
from tests.procs import PROBE, PROBE_GLOB, ProbeService
from tests.servers import RedisServer
from tests.test_hooks import (
    GLOBS_KEY,
    ONLY_OUR_PLUGINS,
    VERSION_KEY,
    Runtimes,
    Store,
    orm,
    sql,
    sql_value,
)

ROOT = Path(__file__).resolve().parent.parent
#: A safety net for one command, not a measurement.
COMMAND_TIMEOUT = 60.0
SECRET = "s3cr3t-Pw-4711"
WRONG_SECRET = "wr0ng-Pw-0815"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store("sqlite", {"JASECI_LIKE__DB__DATA_DIR": str(tmp_path / "data")})
    url: str = request.getfixturevalue("postgres_url")
    return Store("postgresql", {"JASECI_LIKE__DB__URL": url})


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return Store("sqlite", {"JASECI_LIKE__DB__DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def runtimes() -> Iterator[Runtimes]:
    made = Runtimes()
    yield made
    made.close()


def probe_of(hook_services: Mapping[str, Any]) -> ProbeService:
    service = hook_services[PROBE]
    assert isinstance(service, ProbeService)
    return service


# -- invalid values change nothing -------------------------------------------------------------

#: (case, config name, value, what the error must mention)
INVALID: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("wrong type", PROBE, {"level": "high"}, ("probe.level", "'high'", "config_set")),
    ("wrong type, by glob name", PROBE_GLOB, {"label": {"a": 1}}, ("probe.label", "config_set")),
    ("impossible value", PROBE, {"level": -1}, ("probe.level", "-1", "config_set")),
    ("unknown key", PROBE, {"colour": "red"}, ("probe.colour", "'red'", "unknown key")),
    (
        "one good key, one bad",
        PROBE,
        {"label": "fine", "level": [1]},
        ("probe.level", "[1]", "config_set"),
    ),
    ("unknown config name", "nope", {"level": 1}, ("'nope'", "unknown config name")),
    ("unknown glob name", "NOPE_CONFIG", {"level": 1}, ("'NOPE_CONFIG'",)),
    ("bootstrap service redis", "redis", {"port": 1234}, ("redis", "config file")),
    ("bootstrap service db", "DB_CONFIG", {"pool_size": 3}, ("DB_CONFIG", "environment")),
    ("not a mapping", PROBE, ["level", 3], ("PROBE_CONFIG", "mapping")),
]


def snapshot(runtime: Runtime, client: redis.Redis) -> dict[str, Any]:
    """Every layer of stored config, and the config the running probe has."""
    hook = orm(runtime)
    return {
        "sql": sorted(sql(runtime, "SELECT name, value, version FROM jaseci_like_globs")),
        "redis hash": client.hgetall(GLOBS_KEY),
        "redis version": client.get(VERSION_KEY),
        "memory": dict(hook._globs),
        "running probe": dict(probe_of(hook.services).config),
    }


def test_invalid_config_set_is_refused_and_changes_no_layer(
    store: Store, runtimes: Runtimes, redis_url: str
) -> None:
    runtime = runtimes.start(store, redis_url)
    client = runtimes.client(redis_url)
    api = ConfigApi(runtime.hook)
    api.config_set(PROBE, {"level": 5, "label": "before"})
    assert api.config_get(PROBE)["level"] == 5
    assert orm(runtime).get_glob(PROBE_GLOB) is not None  # read through: memory holds it
    before = snapshot(runtime, client)
    assert json.loads(sql_value(runtime, PROBE_GLOB) or "{}")["level"] == 5

    for case, name, value, mentions in INVALID:
        with pytest.raises(ConfigError) as refused:
            api.config_set(name, cast(Mapping[str, Any], value))
        message = str(refused.value)
        for part in mentions:
            assert part in message, f"{case}: {part!r} not in {message!r}"
        assert snapshot(runtime, client) == before, f"{case}: a layer changed"
    assert api.config_get(PROBE)["level"] == 5
    assert api.config_get(PROBE)["label"] == "before"


def test_a_valid_config_set_survives_a_restart(
    store: Store, runtimes: Runtimes, redis_url: str
) -> None:
    first = runtimes.start(store, redis_url)
    api = ConfigApi(first.hook)
    effective = api.config_set(PROBE, {"level": 3, "label": "kept"})
    assert (effective["level"], effective["label"]) == (3, "kept")
    assert json.loads(sql_value(first, PROBE_GLOB) or "{}")["level"] == 3
    # Stored, not yet applied: the running service has what it started with...
    probe = probe_of(first.hook.services)
    assert probe.config["level"] == 0
    # ... until a refresh replaces it with one running the new config.
    refreshed = api.config_refresh(PROBE)
    assert refreshed is probe_of(first.hook.services) and refreshed is not probe
    assert (refreshed.config["level"], refreshed.config["label"]) == (3, "kept")
    assert refreshed.is_running() and probe.state is ServiceState.STOPPED
    first.stop()

    runtimes.client(redis_url).flushall()  # SQL alone must carry it across
    second = runtimes.start(store, redis_url)
    assert probe_of(second.hook.services).config["level"] == 3
    second_api = ConfigApi(second.hook)
    assert second_api.config_get(PROBE)["label"] == "kept"
    assert second_api.resolve(PROBE).origin_of(["level"]) == "stored"
    second.stop()

    # Without Redis at all, and with the environment above the stored value.
    third = runtimes.start(store, env={"JASECI_LIKE__PROBE__LEVEL": "9"})
    third_api = ConfigApi(third.hook)
    assert probe_of(third.hook.services).config["level"] == 9
    assert third_api.config_get(PROBE)["label"] == "kept"
    assert third_api.resolve(PROBE).origin_of(["level"]) == "env JASECI_LIKE__PROBE__LEVEL"
    assert third_api.resolve(PROBE).origin_of(["label"]) == "stored"


def test_concurrent_config_sets_of_different_keys_lose_neither(
    store: Store, runtimes: Runtimes, redis_url: str
) -> None:
    """Two runtimes (as two processes would) set different keys of one service at the
    same time, many times: each read-merge-write holds the stored row, so the last
    value of each key survives."""
    first = runtimes.start(store, redis_url)
    second = runtimes.start(store, redis_url)
    rounds = 25
    start = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def writer(runtime: Runtime, key: str, values: list[Any]) -> None:
        api = ConfigApi(runtime.hook)
        try:
            start.wait()
            for value in values:
                api.config_set(PROBE, {key: value})
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(first, "level", list(range(1, rounds + 1)))),
        threading.Thread(
            target=writer, args=(second, "label", [f"l{i}" for i in range(1, rounds + 1)])
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    stored = json.loads(sql_value(first, PROBE_GLOB) or "{}")
    assert (stored["level"], stored["label"]) == (rounds, f"l{rounds}")
    for runtime in (first, second):
        got = ConfigApi(runtime.hook).config_get(PROBE)
        assert (got["level"], got["label"]) == (rounds, f"l{rounds}")


# -- the command line ----------------------------------------------------------------------------

_PROBE_PLUGIN = '''
"""The probe plugin, as a third-party distribution; its service lives in the tests."""

from __future__ import annotations

from jaseci_like import CommonService, hookimpl
from tests.procs import ProbeService


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [ProbeService]
'''


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``pip install --target`` directory holding the probe plugin distribution."""
    dist = plugin_dist.Dist(
        name="jl-probe-plugin",
        package="jl_probe_plugin",
        files={"plugin.py": _PROBE_PLUGIN},
        entry_points={PROBE: "jl_probe_plugin.plugin"},
    )
    return plugin_dist.build_site(tmp_path_factory.mktemp("probe-plugin"), [dist])


def cli_env(store: Store, *sites: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE") and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = os.pathsep.join([*(str(s) for s in sites), str(ROOT)])
    env.update(ONLY_OUR_PLUGINS)
    env.update(store.env)
    env.update(extra or {})
    return env


def run_cli(env: Mapping[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(console_script()), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def test_cli_config_set_then_get_in_separate_processes(
    store: Store, probe_site: Path, tmp_path: Path
) -> None:
    env = cli_env(store, probe_site)
    stored = run_cli(env, tmp_path, "config", "set", "probe.level", "3")
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.strip() == "probe.level stored", stored.stdout + stored.stderr

    got = run_cli(env, tmp_path, "config", "get", "probe.level")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "3"


def test_cli_refuses_an_invalid_value_and_keeps_the_stored_one(
    sqlite_store: Store, probe_site: Path, tmp_path: Path
) -> None:
    env = cli_env(sqlite_store, probe_site)
    stored = run_cli(env, tmp_path, "config", "set", "probe.level", "4")
    assert stored.returncode == 0, stored.stderr
    refused = run_cli(env, tmp_path, "config", "set", "probe.level", "high")
    assert refused.returncode == ConfigError.exit_code, refused.stdout + refused.stderr
    for part in ("probe.level", "'high'", "config_set"):
        assert part in refused.stderr
    assert "Traceback" not in refused.stderr

    shown = run_cli(env, tmp_path, "config", "show", "probe", "--origin")
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split()[1:] for line in shown.stdout.splitlines()[1:]}
    assert rows["probe.level"] == ["4", "stored"]


# -- secrets -------------------------------------------------------------------------------------


def require_password(server: RedisServer) -> None:
    """Make the (just started) server require ``SECRET``; a restart forgets it."""
    client = redis.Redis(host=server.host, port=server.port)
    try:
        client.config_set("requirepass", SECRET)
    finally:
        client.close()


@pytest.fixture
def password_redis(redis_server_restartable: RedisServer) -> Iterator[RedisServer]:
    """The private redis-server, requiring the password ``SECRET`` (dropped afterwards,
    so the fixture can shut the server down with a plain SHUTDOWN)."""
    server = redis_server_restartable
    require_password(server)
    yield server
    if server.running:
        client = redis.Redis(host=server.host, port=server.port, password=SECRET)
        try:
            client.config_set("requirepass", "")
        finally:
            client.close()


def password_url(server: RedisServer, password: str = SECRET) -> str:
    return f"redis://:{password}@{server.host}:{server.port}/0"


def test_a_redis_password_never_reaches_status_logs_or_errors(
    sqlite_store: Store,
    runtimes: Runtimes,
    password_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    runtime = runtimes.start(sqlite_store, password_url(password_redis))
    rows = {row.name: row for row in runtime.status()}
    assert rows["redis"].healthy is True
    api = ConfigApi(runtime.hook)
    api.config_set(PROBE, {"level": 1})
    with pytest.raises(ConfigError) as bootstrap:
        api.config_set("redis", {"port": 1})
    texts = [repr(runtime.status()), str(bootstrap.value)]

    password_redis.kill()
    rows = {row.name: row for row in runtime.status()}
    assert rows["redis"].healthy is False
    assert rows["redis"].error
    texts.append(repr(runtime.status()))
    orm(runtime).save_glob("WHILE_DOWN", {"x": 1})  # logs that Redis is unavailable
    password_redis.start()
    require_password(password_redis)

    # A wrong password: the service fails, and the error says so without the password.
    with pytest.raises(ServiceStartError) as wrong:
        runtimes.start(sqlite_store, password_url(password_redis, WRONG_SECRET))
    texts.append(str(wrong.value))
    assert "redis" in str(wrong.value)

    # A password inside an invalid value, and inside a URL too malformed to parse.
    with pytest.raises(ConfigError) as invalid:
        runtimes.start(sqlite_store, env={"JASECI_LIKE__REDIS__PASSWORD": json.dumps([SECRET])})
    assert "redis.password" in str(invalid.value)
    texts.append(str(invalid.value))
    with pytest.raises(ServiceStartError) as malformed:
        runtimes.start(
            sqlite_store, env={"JASECI_LIKE__DB__URL": f"postgresql+asyncpg//u:{SECRET}@h/db"}
        )
    assert "db.url" in str(malformed.value)
    texts.append(str(malformed.value))
    texts.append(repr(runtimes.started[-1].status()))

    texts.append(caplog.text)
    texts.extend(record.getMessage() for record in caplog.records)
    for text in texts:
        assert SECRET not in text
        assert WRONG_SECRET not in text


def test_cli_output_never_shows_the_redis_password(
    sqlite_store: Store, password_redis: RedisServer, tmp_path: Path
) -> None:
    env = cli_env(
        sqlite_store,
        extra={
            "JASECI_LIKE__REDIS__ENABLED": "true",
            "JASECI_LIKE__REDIS__URL": password_url(password_redis),
        },
    )
    status = run_cli(env, tmp_path, "--log-level", "debug", "status", "--local")
    redis_row = [line for line in status.stdout.splitlines() if line.startswith("redis ")]
    assert redis_row and "RUNNING" in redis_row[0] and " ok" in redis_row[0], status.stdout
    url = run_cli(env, tmp_path, "config", "get", "redis.url")
    assert url.returncode == 0, url.stderr
    masked = json.loads(url.stdout)
    assert "***@" in masked and masked.endswith(f"@{password_redis.host}:{password_redis.port}/0")
    shown = run_cli(env, tmp_path, "--log-level", "debug", "config", "show", "--origin")
    assert shown.returncode == 0, shown.stderr
    assert "redis.url" in shown.stdout

    password_redis.kill()
    down = run_cli(env, tmp_path, "--log-level", "debug", "status", "--local")
    assert down.returncode != 0
    for done in (status, url, shown, down):
        assert SECRET not in done.stdout
        assert SECRET not in done.stderr
