"""Test a plugin the way pytester tests pytest plugins: fixtures that run its services
in an isolated runtime. Enable it in the plugin's ``pyproject.toml``::

    [tool.pytest.ini_options]
    addopts = "-p jaseci_like.testing"
    jaseci_like_plugins = ["acme"]     # entry-point names to load (built-ins too: "db")

or with ``pytest_plugins = ["jaseci_like.testing"]`` in a test module or the
top-level ``conftest.py``. Then::

    def test_acme_runs(jl_runtime):
        assert jl_runtime.hook.services["acme"].is_running()

What each runtime gets (override the fixture of the same name to change it):

- ``jl_entry_points``: the installed plugins to load (default: the ini list);
- ``jl_plugin_objects``: in-code plugins, ``{name: module_or_object}`` (default
  none); :func:`service_plugin` makes one from service classes;
- ``jl_config``: config sections, as a config file would hold them;
- ``jl_environ``: environment variables (the runtime sees only these, never the
  caller's ``JASECI_LIKE_*``);
- ``jl_data_dir``: a scratch data dir (``XDG_DATA_HOME``), so SQLite files and the
  embedded config store never touch the developer's.

Each runtime has its own registry (``MetaService.isolated()``) and is stopped after
the test; a service still running then fails the test. Plugins that need real
servers get their addresses from ``jl_redis_url`` / ``jl_postgres_url``:
``--jl-redis-url`` / ``--jl-postgres-url`` or ``JASECI_LIKE_TEST_REDIS_URL`` /
``JASECI_LIKE_TEST_POSTGRES_URL``; a test that needs one that is not given fails
saying so. A suite that starts its own servers overrides those two fixtures.

It holds no asserts of its own to rewrite: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from jaseci_like.meta import MetaService
from jaseci_like.plugins.hookspecs import hookimpl
from jaseci_like.runtime import CONFIG_ENV, Runtime
from jaseci_like.service import CommonService

__all__ = ["JlCli", "RuntimeFactory", "service_plugin"]

INI_PLUGINS = "jaseci_like_plugins"
REDIS_ENV = "JASECI_LIKE_TEST_REDIS_URL"
POSTGRES_ENV = "JASECI_LIKE_TEST_POSTGRES_URL"
#: Bound for a ``jl_cli`` command: a safety net, not a measurement.
CLI_TIMEOUT = 120.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_PLUGINS, "jaseci-like entry-point plugins the jl_ fixtures load", "args")
    group = parser.getgroup("jaseci-like")
    group.addoption("--jl-redis-url", help=f"Redis for jl_redis_url (env {REDIS_ENV}).")
    group.addoption(
        "--jl-postgres-url", help=f"PostgreSQL for jl_postgres_url (env {POSTGRES_ENV})."
    )


def service_plugin(*classes: type[CommonService]) -> object:
    """An in-code plugin providing ``classes``: ``{"acme": service_plugin(AcmeService)}``."""

    class _Services:
        @hookimpl
        def jaseci_like_services(self) -> list[type[CommonService]]:
            return list(classes)

    return _Services()


@dataclass
class RuntimeFactory:
    """Builds isolated runtimes; each is stopped (and checked) after the test."""

    entry_points: Sequence[str]
    objects: Mapping[str, object]
    config: Mapping[str, Any]
    environ: Mapping[str, str]
    data_dir: Path
    made: list[Runtime] = field(default_factory=list)
    files_written: int = 0

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables a runtime (or ``jl_cli``) of this test sees."""
        env = {"XDG_DATA_HOME": str(self.data_dir), **self.environ}
        allowed = [*self.entry_points, *self.objects]
        if allowed:  # the allow list admits in-code plugins too
            env.setdefault("JASECI_LIKE__PLUGINS__ALLOW", ",".join(allowed))
        if "api" in allowed:  # 8000 is one per machine; tests run side by side
            env.setdefault("JASECI_LIKE__API__PORT", "0")
        env.update(extra or {})
        return env

    def config_file(self, config: Mapping[str, Any] | None = None) -> Path:
        # A new file each time: a runtime may read its file again (a reset).
        self.files_written += 1
        path = self.data_dir / f"config-{self.files_written}.yaml"
        path.write_text(yaml.safe_dump(dict(config if config is not None else self.config)))
        return path

    def __call__(
        self,
        config: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        profile: str | None = None,
        start: bool = True,
    ) -> Runtime:
        """A runtime of the plugins under test; started unless ``start`` is False
        (a service that fails to start raises ``ServiceStartError``)."""
        runtime = Runtime(
            config_file=self.config_file(config),
            profile=profile,
            environ=self.environment(environ),
            meta=MetaService.isolated(),
            discover=bool(self.entry_points),
            plugins=self.objects,
        )
        self.made.append(runtime)
        if start:
            runtime.start(role=None)
        return runtime

    def stop_all(self) -> list[str]:
        """Stop every runtime made; the names of services that did not stop."""
        left: list[str] = []
        for runtime in reversed(self.made):
            left.extend(s.service_name() for s in runtime.stop())
            runtime.meta.clear(timeout=5.0)
        self.made.clear()
        return left


@dataclass(frozen=True)
class JlCli:
    """The ``jaseci-like`` command, run in a subprocess with the test's plugins,
    config file, environment and data dir."""

    factory: RuntimeFactory
    cwd: Path

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``jaseci-like ARGS`` to its end; ``config`` replaces ``jl_config``."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")}
        base[CONFIG_ENV] = str(self.factory.config_file(config))
        return subprocess.run(
            [sys.executable, "-c", "from jaseci_like.cli.main import main; main()", *args],
            cwd=self.cwd,
            env={**base, **self.factory.environment(env)},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )


@pytest.fixture
def jl_entry_points(request: pytest.FixtureRequest) -> list[str]:
    """Entry-point names of the installed plugins to load (the ini list by default)."""
    try:
        names = request.config.getini(INI_PLUGINS)
    except ValueError:  # enabled by pytest_plugins: the ini option came too late
        return []
    return [str(n) for n in names]


@pytest.fixture
def jl_plugin_objects() -> dict[str, object]:
    """In-code plugins to register, by name (none by default)."""
    return {}


@pytest.fixture
def jl_config() -> dict[str, Any]:
    """Config sections for the runtime, as a config file holds them."""
    return {}


@pytest.fixture
def jl_environ() -> dict[str, str]:
    """Environment variables the runtime sees (``JASECI_LIKE__ACME__KEY=...``)."""
    return {}


@pytest.fixture
def jl_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch data dir, ``XDG_DATA_HOME`` of this process for the test."""
    folder = tmp_path / "jl-data"
    folder.mkdir()
    # The db service reads it from the process environment when its files are made.
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


@pytest.fixture
def jl_runtime_factory(
    jl_entry_points: list[str],
    jl_plugin_objects: dict[str, object],
    jl_config: dict[str, Any],
    jl_environ: dict[str, str],
    jl_data_dir: Path,
) -> Iterator[RuntimeFactory]:
    """``make(config=None, environ=None, profile=None, start=True) -> Runtime``."""
    factory = RuntimeFactory(jl_entry_points, jl_plugin_objects, jl_config, jl_environ, jl_data_dir)
    yield factory
    left = factory.stop_all()
    if left:
        pytest.fail(f"services still running after the test: {', '.join(left)}", pytrace=False)


@pytest.fixture
def jl_runtime(jl_runtime_factory: RuntimeFactory) -> Runtime:
    """A started runtime of the plugins under test."""
    return jl_runtime_factory()


@pytest.fixture
def jl_cli(jl_runtime_factory: RuntimeFactory, tmp_path: Path) -> JlCli:
    """``jl_cli("plugins")``: the command line, as the test's runtimes are set up."""
    return JlCli(jl_runtime_factory, tmp_path)


def _url(request: pytest.FixtureRequest, option: str, env: str, what: str) -> str:
    given = request.config.getoption(option, default=None) or os.environ.get(env)
    if not given:
        pytest.fail(
            f"this test needs {what}: pass --{option.replace('_', '-')} URL or set {env} "
            "(or override the fixture with one that starts a server)",
            pytrace=False,
        )
    return str(given)


@pytest.fixture
def jl_redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis server's URL, given by ``--jl-redis-url`` or ``JASECI_LIKE_TEST_REDIS_URL``."""
    return _url(request, "jl_redis_url", REDIS_ENV, "a Redis server")


@pytest.fixture
def jl_postgres_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL database's URL (``postgresql+asyncpg://...``), given by
    ``--jl-postgres-url`` or ``JASECI_LIKE_TEST_POSTGRES_URL``."""
    return _url(request, "jl_postgres_url", POSTGRES_ENV, "a PostgreSQL database")
