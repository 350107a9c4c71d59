"""Secrets never leave the process as text, and never rest in plain text.

Passwords holding `` /#?@:%`` in ``db.url``, ``redis.url`` and ``task.broker_url``
(not percent-encoded, as people write them) against a real PostgreSQL and a real
redis-server that require them; secrets marked by type, by key name and in a
schema-less service; what ``config set`` leaves in the SQL row and the Redis hash.
Everything runs through the real command line, at debug log level.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import BaseModel

from jaseci_like import ConfigApi, MetaService, Runtime
from jaseci_like.config.schema import secret_paths
from jaseci_like.config.sealing import KEY_ENV, new_key
from jaseci_like.config.secrets import URL, VALUE
from tests import plugin_dist
from tests.plugin_fixtures import Cli, parse_table
from tests.secret_services import SecretsPlugin
from tests.servers import RedisServer, free_port

pytest_plugins = ["tests.plugin_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
GLOBS_KEY = "jaseci_like:globs"
BUILT_INS = {"JASECI_LIKE__PLUGINS__ALLOW": "db,redis,task,profiles"}
OURS = {"JASECI_LIKE__PLUGINS__ALLOW": "db,redis,profiles,secrets"}

#: Two distinctive halves around the characters a password may hold: neither half
#: may be shown anywhere (a library that misreads the URL shows one of them).
LEFT, RIGHT = "lefta7Q", "rightb9Z"
PASSWORDS = {
    "space": f"{LEFT} {RIGHT}",
    "slash": f"{LEFT}/{RIGHT}",
    "hash": f"{LEFT}#{RIGHT}",
    "question": f"{LEFT}?{RIGHT}",
    "at": f"{LEFT}@{RIGHT}",
    "colon": f"{LEFT}:{RIGHT}",
    "percent": f"{LEFT}%{RIGHT}",
    "all": f"{LEFT} /#?@:%{RIGHT}",
    "mixed": f"{LEFT}@x y#z/{RIGHT}?q",
    "doubled": f"{LEFT}@@//##??  ::%%{RIGHT}",
}
PASSWORD_IDS = list(PASSWORDS)

_PLUGIN = '''
"""Entry point of the secrets test plugin: the services live in the test tree."""

from tests.secret_services import SecretsPlugin

_plugin = SecretsPlugin()
jaseci_like_services = _plugin.jaseci_like_services
'''


def assert_hidden(texts: Mapping[str, str], *secrets: str) -> None:
    """No secret (and, for URL passwords, neither half) in any of ``texts``."""
    for what, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} shown by {what}:\n{text}"


def outputs(done: Any) -> str:
    return f"{done.stdout}\n{done.stderr}"


def rows(stdout: str) -> dict[str, dict[str, str]]:
    return {row[next(iter(row))]: row for row in parse_table(stdout.splitlines())}


@pytest.fixture(scope="module")
def secrets_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = plugin_dist.Dist(
        name="jl-secrets-plugin",
        package="jl_secrets_plugin",
        files={"plugin.py": _PLUGIN},
        entry_points={"secrets": "jl_secrets_plugin.plugin"},
    )
    return plugin_dist.build_site(tmp_path_factory.mktemp("secrets-plugin"), [dist])


def require_password(server: RedisServer, password: str) -> None:
    client = redis.Redis(host=server.host, port=server.port)
    try:
        client.config_set("requirepass", password)
    finally:
        client.close()


def with_password(url: str, user: str, password: str) -> str:
    """``url`` (``scheme://user@host...``) with ``password`` written in as it is."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest.split('@', 1)[1]}"


# -- URLs in db.url, redis.url, task.broker_url ---------------------------------------------


@pytest.mark.parametrize("name", PASSWORD_IDS)
def test_url_passwords_with_any_character_are_read_right_and_never_shown(
    cli: Cli, postgres_url: str, redis_server_restartable: RedisServer, name: str
) -> None:
    password = PASSWORDS[name]
    require_password(redis_server_restartable, password)
    redis_at = f"127.0.0.1:{redis_server_restartable.port}"
    env = {
        **BUILT_INS,
        # Trust authentication: the server takes any password, so the service runs
        # only if the URL's host, port and database were read right.
        "JASECI_LIKE__DB__URL": with_password(postgres_url, "postgres", password),
        "JASECI_LIKE__REDIS__ENABLED": "true",
        "JASECI_LIKE__REDIS__URL": f"redis://:{password}@{redis_at}/0",
        "JASECI_LIKE__TASK__MODE": "celery",
        "JASECI_LIKE__TASK__BROKER_URL": f"redis://:{password}@{redis_at}/1",
    }
    seen: dict[str, str] = {}
    status = cli.run("--log-level", "debug", "status", "--local", env=env)
    seen["status"] = outputs(status)
    table = rows(status.stdout)
    for service in ("db", "redis", "task"):
        assert (table[service]["STATE"], table[service]["HEALTH"]) == ("RUNNING", "ok"), seen[
            "status"
        ]
    assert status.returncode == 0, seen["status"]

    show = cli.run("--log-level", "debug", "config", "show", "--origin", env=env)
    seen["config show"] = outputs(show)
    assert show.returncode == 0, seen["config show"]
    shown = rows(show.stdout)
    for key in ("db.url", "redis.url", "task.broker_url"):
        assert "***@127.0.0.1:" in shown[key]["VALUE"], shown[key]
        assert shown[key]["ORIGIN"].startswith("env"), shown[key]
    # One code path for every key: all three with the combined passwords only.
    keys = ("db.url", "redis.url", "task.broker_url") if name in ("all", "mixed") else ("db.url",)
    for key in keys:
        got = cli.run("--log-level", "debug", "config", "get", key, env=env)
        seen[f"config get {key}"] = outputs(got)
        assert got.returncode == 0, seen[f"config get {key}"]
        assert json.loads(got.stdout).split("@")[-1].startswith("127.0.0.1:")
    assert_hidden(seen, password, LEFT, RIGHT)


@pytest.mark.parametrize("name", PASSWORD_IDS)
def test_url_passwords_stay_hidden_when_the_server_is_down_or_the_value_refused(
    cli: Cli, name: str
) -> None:
    password = PASSWORDS[name]
    down = f"127.0.0.1:{free_port()}"
    env = {**BUILT_INS, "JASECI_LIKE__DB__ENABLED": "false", "JASECI_LIKE__REDIS__ENABLED": "true"}
    seen: dict[str, str] = {}
    failing = {
        **env,
        "JASECI_LIKE__REDIS__URL": f"redis://:{password}@{down}/0",
        "JASECI_LIKE__TASK__MODE": "celery",
        "JASECI_LIKE__TASK__BROKER_URL": f"redis://:{password}@{down}/1",
    }
    status = cli.run("--log-level", "debug", "status", "--local", env=failing)
    seen["status"] = outputs(status)
    assert status.returncode == 5, seen["status"]
    # The host and port were read right (the state may be a restart in progress).
    assert rows(status.stdout)["redis"]["STATE"] != "RUNNING", seen["status"]
    assert f"connecting to {down}" in seen["status"]

    refused = {**env, "JASECI_LIKE__TASK__BROKER_URL": f"amqp://guest:{password}@{down}/"}
    bad = cli.run("--log-level", "debug", "config", "show", "task", env=refused)
    seen["config error"] = outputs(bad)
    assert bad.returncode == 3, seen["config error"]
    assert "task.broker_url" in bad.stderr and "expected a Redis URL" in bad.stderr
    assert f"amqp://guest:***@{down}/" in bad.stderr
    assert_hidden(seen, password, LEFT, RIGHT)


def test_built_in_schemas_mark_their_secrets_by_type() -> None:
    from jaseci_like_services.db.service import DbConfig
    from jaseci_like_services.kube.config import KubeConfig
    from jaseci_like_services.mail.config import MailConfig
    from jaseci_like_services.redis.service import RedisConfig
    from jaseci_like_services.task.config import TaskConfig

    expected: dict[type[BaseModel], dict[tuple[str, ...], str]] = {
        DbConfig: {("url",): URL},
        RedisConfig: {("url",): URL, ("password",): VALUE},
        TaskConfig: {("broker_url",): URL, ("result_backend",): URL},
        MailConfig: {("password",): VALUE},
        KubeConfig: {("token",): VALUE},
    }
    for schema, paths in expected.items():
        assert dict(secret_paths(schema)) == paths, schema.__name__


# -- secrets by type, by name, without a schema ---------------------------------------------

VAULT_KEY = "vault-key-5c1e2b7d"
VAULT_TOKEN = "vault-token-88e0f4"
STRIPE_KEY = "sk_live_9aa13f77c0"
SIGNING = "signing-secret-6d2e"
SEAL = "seal-secret-0b97aa"


def ours(cli: Cli, site: Path, *args: str, env: Mapping[str, str]) -> Any:
    return cli.run("--log-level", "debug", *args, env={**OURS, **env}, sites=[site, ROOT])


def test_schema_less_keys_named_like_credentials_are_masked(cli: Cli, secrets_site: Path) -> None:
    env = {"JASECI_LIKE__VAULT__KEY": VAULT_KEY, "JASECI_LIKE__VAULT__TOKEN": VAULT_TOKEN}
    seen: dict[str, str] = {}
    show = ours(cli, secrets_site, "config", "show", "vault", env=env)
    seen["show"] = outputs(show)
    assert show.returncode == 0, seen["show"]
    shown = rows(show.stdout)
    assert json.loads(shown["vault.key"]["VALUE"]) == "***"
    assert json.loads(shown["vault.token"]["VALUE"]) == "***"
    assert json.loads(shown["vault.region"]["VALUE"]) == "eu-1"
    for key in ("vault.key", "vault.token"):
        got = ours(cli, secrets_site, "config", "get", key, env=env)
        seen[key] = outputs(got)
        assert json.loads(got.stdout) == "***", seen[key]
    # The service's start fails with an error repeating both (as a library may).
    status = ours(
        cli, secrets_site, "status", "--local", env={**env, "JASECI_LIKE__VAULT__FAIL": "true"}
    )
    seen["status"] = outputs(status)
    assert status.returncode == 5
    assert "vault refused key *** and token ***" in rows(status.stdout)["vault"]["ERROR"]
    assert_hidden(seen, VAULT_KEY, VAULT_TOKEN)


def test_the_readme_stripe_key_is_masked_in_a_config_error_and_everywhere(
    cli: Cli, secrets_site: Path
) -> None:
    seen: dict[str, str] = {}
    refused = ours(
        cli,
        secrets_site,
        "config",
        "show",
        "stripe",
        env={"JASECI_LIKE__STRIPE__KEY": json.dumps([STRIPE_KEY])},
    )
    seen["config error"] = outputs(refused)
    assert refused.returncode == 3, seen["config error"]
    assert "stripe.key = '***' (from env JASECI_LIKE__STRIPE__KEY)" in refused.stderr
    got = ours(
        cli,
        secrets_site,
        "config",
        "get",
        "stripe.key",
        env={"JASECI_LIKE__STRIPE__KEY": STRIPE_KEY},
    )
    seen["get"] = outputs(got)
    assert json.loads(got.stdout) == "***", seen["get"]
    assert_hidden(seen, STRIPE_KEY)


def test_secrets_marked_by_type_are_masked_whatever_their_names(
    cli: Cli, secrets_site: Path
) -> None:
    env = {"JASECI_LIKE__SIGNER__SIGNING": SIGNING, "JASECI_LIKE__SIGNER__SEAL": SEAL}
    seen: dict[str, str] = {}
    show = ours(cli, secrets_site, "config", "show", "signer", env=env)
    seen["show"] = outputs(show)
    shown = rows(show.stdout)
    assert json.loads(shown["signer.signing"]["VALUE"]) == "***", seen["show"]
    assert json.loads(shown["signer.seal"]["VALUE"]) == "***", seen["show"]
    got = ours(cli, secrets_site, "config", "get", "signer.seal", env=env)
    seen["get"] = outputs(got)
    assert json.loads(got.stdout) == "***"
    status = ours(
        cli, secrets_site, "status", "--local", env={**env, "JASECI_LIKE__SIGNER__FAIL": "1"}
    )
    seen["status"] = outputs(status)
    assert "signer rejected *** sealed with ***" in rows(status.stdout)["signer"]["ERROR"]
    refused = ours(
        cli,
        secrets_site,
        "config",
        "show",
        "signer",
        env={"JASECI_LIKE__SIGNER__SEAL": json.dumps({"v": SEAL})},
    )
    seen["config error"] = outputs(refused)
    assert refused.returncode == 3
    assert "signer.seal = '***'" in refused.stderr
    assert_hidden(seen, SIGNING, SEAL)


# -- at rest --------------------------------------------------------------------------------


def sqlite_rows(data_dir: Path) -> dict[str, str]:
    with sqlite3.connect(data_dir / "jaseci_like.db") as conn:
        return dict(conn.execute("SELECT name, value FROM jaseci_like_globs").fetchall())


def redis_hash(url: str) -> dict[str, str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return client.hgetall(GLOBS_KEY)  # type: ignore[return-value]
    finally:
        client.close()


def test_config_set_stores_secrets_encrypted_and_reads_them_back(
    cli: Cli, secrets_site: Path, redis_url: str, tmp_path: Path, meta: MetaService
) -> None:
    data_dir = tmp_path / "data"
    key = new_key()
    env = {
        "JASECI_LIKE__DB__DATA_DIR": str(data_dir),
        "JASECI_LIKE__REDIS__ENABLED": "true",
        "JASECI_LIKE__REDIS__URL": redis_url,
        KEY_ENV: key,
    }
    for setting, value in (
        ("vault.token", VAULT_TOKEN),
        ("vault.region", "us-2"),
        ("stripe.key", STRIPE_KEY),
        ("signer.seal", SEAL),
    ):
        done = ours(cli, secrets_site, "config", "set", setting, value, env=env)
        assert done.returncode == 0, outputs(done)
        assert done.stdout.strip() == f"{setting} stored", outputs(done)

    stored = {
        "SQL row": json.dumps(sqlite_rows(data_dir)),
        "Redis hash": json.dumps(redis_hash(redis_url)),
    }
    assert_hidden(stored, VAULT_TOKEN, STRIPE_KEY, SEAL)
    vault = json.loads(sqlite_rows(data_dir)["VAULT_CONFIG"])
    assert vault["region"] == "us-2"  # only secrets are sealed
    assert set(vault["token"]) == {"$sealed"}

    runtime = Runtime(environ={**OURS, **env}, plugins={"secrets": SecretsPlugin()}, meta=meta)
    try:
        runtime.open_store(required=True)
        api = ConfigApi(runtime.hook)
        assert api.config_get("vault")["token"] == VAULT_TOKEN
        assert api.config_get("stripe")["key"] == STRIPE_KEY
        assert api.config_get("signer")["seal"] == SEAL
    finally:
        runtime.stop()
    got = ours(cli, secrets_site, "config", "get", "vault.token", env=env)
    assert json.loads(got.stdout) == "***", outputs(got)


@pytest.mark.parametrize("given", ["missing", "invalid", "another"])
def test_without_the_right_secret_key_secrets_are_refused_with_exit_3(
    cli: Cli, secrets_site: Path, tmp_path: Path, given: str
) -> None:
    env = {"JASECI_LIKE__DB__DATA_DIR": str(tmp_path / "data")}
    first = ours(
        cli,
        secrets_site,
        "config",
        "set",
        "vault.token",
        VAULT_TOKEN,
        env={**env, KEY_ENV: new_key()},
    )
    assert first.returncode == 0, outputs(first)
    wrong = {"missing": {}, "invalid": {KEY_ENV: "not-a-key"}, "another": {KEY_ENV: new_key()}}
    env = {**env, **wrong[given]}

    stored = ours(cli, secrets_site, "config", "set", "stripe.key", STRIPE_KEY, env=env)
    read = ours(cli, secrets_site, "config", "get", "vault.region", env=env)
    if given == "another":  # a new secret is sealed with the key given: that works
        assert stored.returncode == 0, outputs(stored)
    else:
        assert stored.returncode == 3, outputs(stored)
        assert KEY_ENV in stored.stderr
    assert read.returncode == 3, outputs(read)
    assert "vault.token" in read.stderr and KEY_ENV in read.stderr
    assert read.stdout == ""
    for done in (stored, read):
        assert "Traceback" not in outputs(done)
    assert_hidden({"set": outputs(stored), "get": outputs(read)}, VAULT_TOKEN, STRIPE_KEY)
    assert STRIPE_KEY not in json.dumps(sqlite_rows(tmp_path / "data"))


def test_a_secret_in_defaults_is_not_copied_to_the_store(
    redis_url: str, tmp_path: Path, meta: MetaService
) -> None:
    """The seed stores a service's defaults when its glob is absent; a secret among
    them stays out of the store (the defaults are the lowest layer anyway)."""
    env = {
        **OURS,
        "JASECI_LIKE__DB__DATA_DIR": str(tmp_path / "data"),
        "JASECI_LIKE__REDIS__ENABLED": "true",
        "JASECI_LIKE__REDIS__URL": redis_url,
    }
    runtime = Runtime(environ=env, plugins={"secrets": SecretsPlugin()}, meta=meta)
    try:
        runtime.start(strict=False)
        hook = runtime.hook
        hook.service_glob("SEEDED_CONFIG", {"enabled": True, "api_key": STRIPE_KEY, "n": 1})
        hook.commit()
        assert hook.service_glob("SEEDED_CONFIG", {"api_key": STRIPE_KEY})["api_key"] == STRIPE_KEY
    finally:
        runtime.stop()
    assert STRIPE_KEY not in json.dumps(sqlite_rows(tmp_path / "data"))
    assert STRIPE_KEY not in json.dumps(redis_hash(redis_url))
    assert json.loads(sqlite_rows(tmp_path / "data")["SEEDED_CONFIG"]) == {"enabled": True, "n": 1}
