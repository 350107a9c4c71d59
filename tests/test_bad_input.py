"""The bad-input corpus (``tests/bad_input/cases.py``), run as one parametrized test.

Every case goes through a real door: the command line (click's runner on the real
``jaseci_like.cli.main.cli`` in this process, a handful through the installed
console script), a runtime built from environment variables and config files,
the kube service rendering a plugin's manifests, plugin discovery of real
installed distributions, and HTTP requests to the API served on loopback. All
of them share one store, an SQLite database in a data directory of this module,
seeded with a group, a dotfile, a superadmin and a stored config value; each case
snapshots every table of it before and after.

In process, each command gets a registry of its own (as a fresh process would):
the default ``MetaService()`` registry is swapped for a new one around each run.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from jaseci_like_services.kube import KubeService
from jaseci_like_services.kube import plugin as kube_plugin

import jaseci_like.meta as meta_module
from jaseci_like import CommonService, JaseciLikeError, MetaService, Runtime, hookimpl
from jaseci_like.cli.main import cli
from jaseci_like.meta import Registry
from tests import plugin_dist
from tests.api_support import ApiRig, api_rig
from tests.bad_input.cases import (
    CASES,
    GROUP,
    ApiCase,
    Case,
    CliCase,
    ConfigFileCase,
    EnvCase,
    Expect,
    KubeCase,
    PluginCase,
    Refused,
    Stored,
)
from tests.bad_input.plugins import bad_input_plugins
from tests.plugin_fixtures import ANSWER_TIMEOUT, Cli, console_script, on_sys_path, parse_table

SQLITE_FILE = "jaseci_like.db"
SUPERADMIN = "root@example.org"
#: A message longer than this is not a clear one (a value repeated in full, say).
MAX_MESSAGE = 4000
#: Tables the snapshot leaves out: Alembic's bookkeeping only.
#: Tables whose rows are not data a case could change: the schema's version, and
#: the cluster's liveness (heartbeats and the lease renew themselves as time passes).
NOT_DATA = frozenset(
    {
        "alembic_version",
        "jaseci_like_instances",
        "jaseci_like_leases",
        "jaseci_like_claims",
        "jaseci_like_requests",
    }
)


@dataclass(frozen=True)
class Outcome:
    """What a case showed its user: an exit status or error code, the message, all
    output, the HTTP status (API), and an exception that escaped untyped, if any."""

    code: int | str
    message: str
    output: str
    status: int | None = None
    untyped: BaseException | None = None


Snapshot = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


@dataclass
class Store:
    """The data directory every door of this module uses, and the command line on it."""

    data_dir: Path
    env: dict[str, str | None]

    def snapshot(self) -> Snapshot:
        """Every row of every data table, as (columns, sorted rows) per table."""
        path = self.data_dir / SQLITE_FILE
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            names = [
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if row[0] not in NOT_DATA and not row[0].startswith("sqlite_")
            ]
            out: Snapshot = {}
            for name in sorted(names):
                cursor = conn.execute(f'SELECT * FROM "{name}"')
                columns = [d[0] for d in cursor.description]
                out[name] = (columns, sorted(cursor.fetchall(), key=repr))
        return out

    def invoke(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> Outcome:
        """Run ``jaseci-like ARGS`` in this process, on a registry of its own."""
        registry = Registry()
        shared = meta_module._SHARED
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        meta_module._SHARED = registry
        try:
            result = CliRunner().invoke(cli, list(args), env={**self.env, **(env or {})})
        finally:
            meta_module._SHARED = shared
            root.handlers[:] = handlers  # the command set up logging to its own streams
            root.setLevel(level)
            MetaService(registry).clear(timeout=10.0)
        escaped = result.exception
        return Outcome(
            code=result.exit_code,
            message=result.stderr,
            output=result.output,
            untyped=None if escaped is None or isinstance(escaped, SystemExit) else escaped,
        )


def _clean_environ() -> dict[str, str | None]:
    """Unset every JASECI_LIKE variable this process may have."""
    return {k: None for k in os.environ if k.startswith("JASECI_LIKE")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    data_dir = tmp_path_factory.mktemp("bad-input-data")
    env: dict[str, str | None] = {
        **_clean_environ(),
        "XDG_DATA_HOME": str(tmp_path_factory.mktemp("bad-input-xdg")),
        "JASECI_LIKE__DB__DATA_DIR": str(data_dir),
    }
    # The command line gets its plugins' commands the way `main()` gives them.
    Runtime.command_plugins(environ={}).add_commands(cli)
    made = Store(data_dir, env)
    for args in (
        ("groups", "create", GROUP),
        ("dotfiles", "create", GROUP, ".bashrc", "--data", "export EDITOR=vi"),
        ("users", "create", SUPERADMIN, "--role", "superadmin"),
        ("config", "set", "group_config.max_dotfiles", "90"),
        # Every service's config read once: its defaults are stored now, not by a case.
        ("config", "show"),
    ):
        seeded = made.invoke(args)
        assert seeded.code == 0 and seeded.untyped is None, (args, seeded)
    return made


@pytest.fixture(scope="module")
def console(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The installed console script on the store, no JASECI_LIKE variable inherited."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE") and k != "PYTHONPATH"
    }
    env.update({k: v for k, v in store.env.items() if v is not None})
    workdir = tmp_path_factory.mktemp("bad-input-cwd")
    return Cli(console_script(), workdir, env)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The broken plugins of tests/plugin_dist.py and tests/bad_input/plugins.py, installed."""
    root = tmp_path_factory.mktemp("bad-input-plugins")
    return plugin_dist.build_site(root, [*plugin_dist.broken_plugins(), bad_input_plugins()])


@pytest.fixture(scope="module")
def plugin_table(console: Cli, plugin_site: Path) -> dict[str, dict[str, str]]:
    """``jaseci-like plugins`` with every bad plugin installed: one process for them all."""
    done = console.run("plugins", sites=[plugin_site])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return {row["PLUGIN"]: row for row in parse_table(done.stdout.splitlines())}


@dataclass(frozen=True)
class ApiDoor:
    rig: ApiRig
    key: str


@pytest.fixture(scope="module")
def api_door(store: Store) -> Iterator[ApiDoor]:
    """The API served on loopback over the store, and a superadmin's key."""
    with api_rig(store.data_dir) as rig:
        app = rig.app
        user = app.sync.users.get(SUPERADMIN, user=app.system_user())
        yield ApiDoor(rig, rig.issue_key(user.id))


# -- one runner per door -----------------------------------------------------------------------


def _with_files(args: Sequence[str], files: Mapping[str, bytes], folder: Path) -> list[str]:
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return [str(folder / a[1:-1]) if a[1:-1] in files and a[0] == "{" else a for a in args]


def run_config_file(case: ConfigFileCase, store: Store, folder: Path) -> Outcome:
    config = folder / "config.yaml"
    config.write_bytes(case.text if isinstance(case.text, bytes) else case.text.encode())
    return store.invoke(["config", "show", "--config", str(config)])


def run_env(case: EnvCase, store: Store) -> Outcome:
    return store.invoke(case.args, case.env)


def run_cli(case: CliCase, store: Store, folder: Path, request: pytest.FixtureRequest) -> Outcome:
    args = _with_files(case.args, case.files, folder)
    if not case.subprocess:
        return store.invoke(args)
    console: Cli = request.getfixturevalue("console")
    done = console.run(*args)
    return Outcome(done.returncode, done.stderr, done.stdout + done.stderr)


class ServicesPlugin:
    """An in-code plugin providing the given service classes."""

    def __init__(self, *classes: type[CommonService]) -> None:
        self.classes = list(classes)

    @hookimpl
    def jaseci_like_services(self) -> list[type[CommonService]]:
        return self.classes


def run_kube(case: KubeCase, folder: Path) -> Outcome:
    manifests = folder / "web.yaml"
    manifests.write_text(case.text, encoding="utf-8")
    web = type("WebService", (CommonService,), {"name": "web", "kube_manifest": manifests})
    try:
        runtime = Runtime(
            environ={"JASECI_LIKE__KUBE__MANAGE": "[]", **case.settings},
            meta=MetaService.isolated(),
            discover=False,
            plugins={"kube": kube_plugin, "web": ServicesPlugin(web)},
        )
        rendered = KubeService(runtime.hook).render()
    except JaseciLikeError as exc:
        return Outcome(exc.code, str(exc), str(exc))
    except Exception as exc:
        return Outcome("untyped", repr(exc), repr(exc), untyped=exc)
    return Outcome(0, "rendered", rendered)


def run_plugin(case: PluginCase, store: Store, request: pytest.FixtureRequest) -> Outcome:
    site: Path = request.getfixturevalue("plugin_site")
    table: dict[str, dict[str, str]] = request.getfixturevalue("plugin_table")
    allow = f"db,group_config,profiles,{case.plugin}"
    with on_sys_path(site):
        runtime = Runtime(
            environ={
                "JASECI_LIKE__PLUGINS__ALLOW": allow,
                "JASECI_LIKE__DB__DATA_DIR": str(store.data_dir),
            },
            meta=MetaService.isolated(),
        )
    # The others are not harmed: the built-in services are there all the same.
    assert {"db", "group_config"} <= set(runtime.meta.service_names())
    info = runtime.plugins.infos[case.plugin]
    row = table[case.plugin]
    assert row["STATUS"] == info.status, (row, info)
    message = info.error or ""
    return Outcome(info.status, message, f"{message}\n{row}")


def run_api(case: ApiCase, request: pytest.FixtureRequest) -> Outcome:
    door: ApiDoor = request.getfixturevalue("api_door")
    headers = {
        "key": {"Authorization": f"Bearer {door.key}"},
        "bad": {"Authorization": "Bearer jl_not_a_key"},
        "none": {},
    }[case.auth]
    if case.body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    with httpx.Client(base_url=door.rig.url, timeout=ANSWER_TIMEOUT) as client:
        response = client.request(
            case.method, case.path, json=case.json, content=case.body, headers=headers
        )
    if response.is_success:
        return Outcome(0, "", response.text, response.status_code)
    body = response.json()
    assert set(body) == {"code", "message"}, f"not an error body: {response.text}"
    return Outcome(body["code"], body["message"], response.text, response.status_code)


def run(case: Case, store: Store, folder: Path, request: pytest.FixtureRequest) -> Outcome:
    if isinstance(case, ConfigFileCase):
        return run_config_file(case, store, folder)
    if isinstance(case, EnvCase):
        return run_env(case, store)
    if isinstance(case, CliCase):
        return run_cli(case, store, folder, request)
    if isinstance(case, KubeCase):
        return run_kube(case, folder)
    if isinstance(case, PluginCase):
        return run_plugin(case, store, request)
    return run_api(case, request)


# -- what every case must show ---------------------------------------------------------------


def check_refused(expect: Refused, outcome: Outcome, before: Snapshot, after: Snapshot) -> None:
    assert outcome.code == expect.code, f"expected {expect.code!r}, got {outcome}"
    if expect.status is not None:
        assert outcome.status == expect.status, outcome
    for fragment in expect.says:
        assert fragment in outcome.message, f"{fragment!r} not in {outcome.message!r}"
    for fragment in expect.hides:
        assert fragment not in outcome.output, f"{fragment!r} shown: {outcome.output!r}"
    assert len(outcome.message) < MAX_MESSAGE, f"a {len(outcome.message)}-character message"
    assert after == before, "refused input changed stored data"


def check_stored(expect: Stored, outcome: Outcome, before: Snapshot, after: Snapshot) -> None:
    assert outcome.code == 0 and outcome.status in (None, 201), outcome
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"gc_dotfiles"}, f"changed: {changed}"
    columns, rows = after["gc_dotfiles"]
    added = set(rows) - set(before["gc_dotfiles"][1])
    assert len(added) == 1 and set(before["gc_dotfiles"][1]) <= set(rows), added
    row = dict(zip(columns, added.pop(), strict=True))
    assert (row["path"], row["data"], row["status"]) == (expect.path, expect.data, "active")


def check(expect: Expect, outcome: Outcome, before: Snapshot, after: Snapshot) -> None:
    assert outcome.untyped is None, f"an untyped error escaped: {outcome.untyped!r}"
    assert "Traceback" not in outcome.output, outcome.output
    if isinstance(expect, Refused):
        check_refused(expect, outcome, before, after)
    elif isinstance(expect, Stored):
        check_stored(expect, outcome, before, after)
    else:
        assert outcome.code == 0, outcome
        for fragment in expect.says:
            assert fragment in outcome.output, f"{fragment!r} not in {outcome.output!r}"
        assert after == before


@pytest.mark.parametrize("case", CASES, ids=[f"{c.door.replace(' ', '-')}:{c.id}" for c in CASES])
def test_bad_input(
    case: Case, store: Store, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The door is opened (a server started, plugins installed) before the snapshot.
    for needed, fixture in (
        (isinstance(case, ApiCase), "api_door"),
        (isinstance(case, PluginCase), "plugin_table"),
        (isinstance(case, CliCase) and case.subprocess, "console"),
    ):
        if needed:
            request.getfixturevalue(fixture)
    before = store.snapshot()
    outcome = run(case, store, tmp_path, request)
    check(case.expect, outcome, before, store.snapshot())


def test_the_corpus_covers_every_door() -> None:
    doors: dict[str, int] = {}
    for case in CASES:
        doors[case.door] = doors.get(case.door, 0) + 1
    assert len(CASES) >= 60
    assert len({c.id for c in CASES if c.door == "command line"}) == doors["command line"]
    assert set(doors) == {
        "config file",
        "environment",
        "command line",
        "kubernetes manifests",
        "plugin registration",
        "api",
    }
    assert all(count >= 8 for count in doors.values()), doors


def test_the_console_script_works_on_the_same_store(console: Cli) -> None:
    # The subprocess cases are only meaningful if they see the store the others see.
    done = console.run("config", "get", "group_config.max_dotfiles")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "90"
