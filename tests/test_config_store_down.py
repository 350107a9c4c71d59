"""A config store that is down, or refuses us, is an error (exit 7), never a default.

``config get``, ``config show --origin`` and ``config set`` through the real command
line, with ``db.url`` pointing at a PostgreSQL that is not there or that refuses the
password, and with Redis as the only store and down. Also: a value ``config set``
is given is checked without the environment's overrides, and the embedded default
keeps working.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.plugin_fixtures import Cli, parse_table
from tests.servers import PostgresServer, free_port

pytest_plugins = ["tests.plugin_fixtures"]

BUILT_INS = {"JASECI_LIKE__PLUGINS__ALLOW": "db,redis,task,profiles"}
ROLE = "jl_store_down_role"
RIGHT = "r1ght-Pw-3310"
#: Characters a careless operator leaves unencoded; masked like any other password.
WRONG = "wr0ng p@ss/#?-7781"
#: A safety net for the server to apply its new authentication rules.
RELOAD_TIMEOUT = 10.0
COMMANDS = {
    "get": ("config", "get", "task.workers"),
    "show": ("config", "show", "--origin", "task"),
    "set": ("config", "set", "task.workers", "3"),
}


async def _refused(port: int) -> bool:
    try:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user=ROLE, password=WRONG, database="postgres"
        )
    except asyncpg.InvalidPasswordError:
        return True
    await conn.close()
    return False


@pytest.fixture(scope="module")
def password_role(postgres_server: PostgresServer) -> str:
    """A role of the session's (trust) cluster that must give its password."""
    postgres_server.start()
    postgres_server.psql(f"DROP ROLE IF EXISTS {ROLE}")
    postgres_server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{RIGHT}'")
    hba = postgres_server.data_dir / "pg_hba.conf"
    rule = f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
    if rule not in hba.read_text():
        hba.write_text(rule + hba.read_text())
    postgres_server.psql("SELECT pg_reload_conf()")
    # The reload is asynchronous: wait until a wrong password is refused.
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while not asyncio.run(_refused(postgres_server.port)):
        assert time.monotonic() < deadline, "PostgreSQL did not apply the new pg_hba.conf"
    return ROLE


def store_env(cause: str, postgres_server: PostgresServer | None) -> tuple[dict[str, str], str]:
    """The environment for ``cause``, and the address the message must name."""
    if cause == "redis-down":
        where = f"127.0.0.1:{free_port()}"
        env = {
            "JASECI_LIKE__DB__ENABLED": "false",
            "JASECI_LIKE__REDIS__ENABLED": "true",
            "JASECI_LIKE__REDIS__URL": f"redis://:{WRONG}@{where}/0",
        }
        return env, where
    assert postgres_server is not None
    port = postgres_server.port if cause == "wrong-password" else free_port()
    where = f"127.0.0.1:{port}"
    return {"JASECI_LIKE__DB__URL": f"postgresql+asyncpg://{ROLE}:{WRONG}@{where}/postgres"}, where


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("cause", ["postgres-down", "wrong-password", "redis-down"])
def test_a_store_that_is_down_or_refuses_us_fails_the_config_commands_with_exit_7(
    cli: Cli, request: pytest.FixtureRequest, cause: str, command: str
) -> None:
    server = None
    if cause == "wrong-password":
        request.getfixturevalue("password_role")
    if cause != "redis-down":
        server = request.getfixturevalue("postgres_server")
    env, where = store_env(cause, server)
    done = cli.run(*COMMANDS[command], env={**BUILT_INS, **env})
    assert done.returncode == 7, f"{done.stdout}\n{done.stderr}"
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    service = "redis" if cause == "redis-down" else "db"
    assert f"the config store (the {service} service at " in errors[0]
    assert f"***@{where}/" in errors[0]
    if cause == "wrong-password":
        assert "password authentication failed" in errors[0]
    assert "nothing was read or changed" in errors[0]
    assert done.stdout == ""  # no default passed off as the value, no "stored"
    for secret in (WRONG, "p@ss", "wr0ng"):
        assert secret not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_config_set_refuses_a_value_an_environment_override_hides(cli: Cli) -> None:
    override = {**BUILT_INS, "JASECI_LIKE__TASK__RESULT_TTL": "60"}
    refused = cli.run("config", "set", "task.result_ttl", "0", env=override)
    assert refused.returncode == 3, refused.stderr
    assert "task.result_ttl = '0' (from config_set)" in refused.stderr
    # Nothing stored: without the override, the packaged default applies.
    plain = cli.run("config", "get", "task.result_ttl", env=BUILT_INS)
    assert (plain.returncode, plain.stdout.strip()) == (0, "86400"), plain.stderr
    hidden = cli.run("config", "get", "task.result_ttl", env=override)
    assert hidden.stdout.strip() == "60"


def show_origins(cli: Cli, env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    shown = cli.run("config", "show", "--origin", "task", env=env)
    assert shown.returncode == 0, shown.stderr
    return {row["KEY"]: row for row in parse_table(shown.stdout.splitlines())}


def test_the_embedded_default_store_keeps_what_config_set_stores(cli: Cli) -> None:
    stored = cli.run("config", "set", "task.workers", "3", env=BUILT_INS)
    assert (stored.returncode, stored.stdout.strip()) == (0, "task.workers stored"), stored.stderr
    got = cli.run("config", "get", "task.workers", env=BUILT_INS)
    assert (got.returncode, json.loads(got.stdout)) == (0, 3), got.stderr
    row = show_origins(cli, BUILT_INS)["task.workers"]
    assert (row["VALUE"], row["ORIGIN"]) == ("3", "stored")


def test_without_any_store_config_set_says_the_value_lives_in_memory_only(cli: Cli) -> None:
    env = {**BUILT_INS, "JASECI_LIKE__DB__ENABLED": "false"}
    done = cli.run("config", "set", "task.workers", "3", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "task.workers stored (in memory only)"
    assert "no config store is configured (db is disabled" in done.stderr
    assert show_origins(cli, env)["task.workers"]["ORIGIN"] == "default"
