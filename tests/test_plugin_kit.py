"""The plugin author's kit: ``jaseci_like.testing``, ``new-plugin``, the hook
reference, versions and ``--strict`` in ``plugins`` and ``up``.

The scaffold test does what an author does: ``jaseci-like new-plugin`` into a new
folder, ``pip install`` the project and the plugin into a fresh virtualenv (one per
session), run the plugin's own tests there, and list it with ``jaseci-like plugins``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from jaseci_like import (
    CommonService,
    ConfigError,
    MemoryHook,
    MetaService,
    Runtime,
    ServiceConfig,
)
from jaseci_like.plugins.hookspecs import PROJECT
from jaseci_like.plugins.reference import hook_docs
from jaseci_like.testing import JlCli, RuntimeFactory, service_plugin
from tests import plugin_dist
from tests.plugin_fixtures import Cli, PluginSites, parse_table

pytest_plugins = ["pytester", "jaseci_like.testing", "tests.plugin_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
#: Installing the project and its dependencies into a new virtualenv: a safety net.
INSTALL_TIMEOUT = 900.0


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(tmp: Path) -> dict[str, str]:
    """No JASECI_LIKE* variable, no PYTHONPATH or virtualenv of the test run leaks in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JASECI_LIKE", "PYTEST")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["XDG_DATA_HOME"] = str(tmp / "xdg-data")
    return env


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the project installed from this working tree (pip's
    cache and configured indexes allowed), made once per session."""
    folder = tmp_path_factory.mktemp("fresh-venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(folder)
    env = clean_env(folder.parent)
    run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)], ROOT, env)
    return folder


# -- new-plugin ----------------------------------------------------------------------------


def test_a_new_plugin_passes_its_own_tests_in_a_fresh_virtualenv(
    fresh_venv: Path, tmp_path: Path
) -> None:
    env = clean_env(tmp_path)
    bin_dir = fresh_venv / "bin"
    (tmp_path / "work").mkdir()
    wrote = run(
        [str(bin_dir / "jaseci-like"), "new-plugin", "acme", "--dir", "work"], tmp_path, env
    )
    assert "jaseci-like-acme" in wrote.stdout
    project = tmp_path / "work" / "jaseci-like-acme"
    # Written clean: the project's own ruff settings accept it.
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], project, env)
    run([str(bin_dir / "pip"), "install", "-q", "-e", f"{project}[test]"], tmp_path, env)
    tests = run(
        [str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env
    )
    assert " passed" in tests.stdout and "failed" not in tests.stdout, tests.stdout
    listed = run([str(bin_dir / "jaseci-like"), "plugins", "--strict"], tmp_path, env)
    rows = {row["PLUGIN"]: row for row in parse_table(listed.stdout.splitlines())}
    assert rows["acme"]["VERSION"] == "0.1.0"
    assert (rows["acme"]["STATUS"], rows["acme"]["SERVICES"]) == ("loaded", "acme")
    assert rows["acme"]["SOURCE"] == "jaseci_like_acme.plugin (jaseci-like-acme)"
    hello = run([str(bin_dir / "jaseci-like"), "acme-hello", "bob"], tmp_path, env)
    assert hello.stdout.strip() == "hello, bob!"


def test_new_plugin_refuses_a_bad_name_and_an_existing_folder(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    bad = cli.run("new-plugin", "Acme-Co", "--dir", str(out))
    assert bad.returncode == 2
    assert "plugin name 'Acme-Co'" in bad.stderr
    assert not out.exists()
    first = cli.run("new-plugin", "acme", "--dir", str(out))
    assert first.returncode == 0, first.stderr
    service = out / "jaseci-like-acme" / "jaseci_like_acme" / "service.py"
    service.write_text("# edited by the author\n")
    again = cli.run("new-plugin", "acme", "--dir", str(out))
    assert again.returncode == 2
    assert "already exists" in again.stderr
    assert service.read_text() == "# edited by the author\n"


# -- the hook reference, versions, --strict ---------------------------------------------------


def test_the_hook_reference_lists_every_hookspec_with_its_signature_and_doc(cli: Cli) -> None:
    import jaseci_like.plugins.hookspecs as specs

    done = cli.run("plugins", "--hooks")
    assert done.returncode == 0, done.stderr
    names = [name for name in dir(specs) if hasattr(getattr(specs, name), f"{PROJECT}_spec")]
    assert sorted(h.name for h in hook_docs()) == sorted(names)
    assert len(names) >= 4
    for hook in hook_docs():
        assert f"\n{hook.signature}\n" in done.stdout
        first_line = (getattr(specs, hook.name).__doc__ or "").strip().splitlines()[0]
        assert f"    {first_line}" in done.stdout, hook.name
    assert "jaseci_like_commands(cli: click.Group) -> None" in done.stdout


def test_plugins_shows_versions_and_strict_fails_on_a_broken_plugin(
    cli: Cli, plugin_sites: PluginSites
) -> None:
    good = cli.run("plugins", "--strict", sites=[plugin_sites.good])
    assert good.returncode == 0, good.stderr
    rows = {row["PLUGIN"]: row for row in parse_table(good.stdout.splitlines())}
    assert rows[plugin_dist.GOOD]["VERSION"] == "0.1.0"
    from importlib.metadata import version

    assert rows["db"]["VERSION"] == version("jaseci-like")
    sites = [plugin_sites.good, plugin_sites.broken]
    lax = cli.run("plugins", sites=sites)
    assert lax.returncode == 0, lax.stderr
    strict = cli.run("plugins", "--strict", sites=sites)
    assert strict.returncode == 4, strict.stderr
    # The table is still printed, and the error names every broken plugin.
    assert parse_table(strict.stdout.splitlines())
    for name in plugin_dist.BROKEN_ERRORS:
        assert name in strict.stderr, name
    assert "Traceback" not in strict.stderr


def test_a_plugin_broken_only_in_its_commands_hook_is_listed_broken(
    cli: Cli, tmp_path: Path
) -> None:
    late = plugin_dist.Dist(
        name="jl-late-plugin",
        package="jl_late_plugin",
        files={
            "plugin.py": """
            from jaseci_like import hookimpl


            @hookimpl
            def jaseci_like_commands(cli):
                raise RuntimeError("the commands hook of late exploded")
            """
        },
        entry_points={"late": "jl_late_plugin.plugin"},
    )
    site = plugin_dist.build_site(tmp_path, [late])
    strict = cli.run("plugins", "--strict", sites=[site])
    assert strict.returncode == 4, strict.stdout + strict.stderr
    rows = {row["PLUGIN"]: row for row in parse_table(strict.stdout.splitlines())}
    assert rows["late"]["STATUS"] == "broken"
    assert "the commands hook of late exploded" in rows["late"]["ERROR"]


def test_up_strict_refuses_to_start_with_a_broken_plugin(
    cli: Cli, plugin_sites: PluginSites
) -> None:
    up = cli.run(
        "up",
        "--strict",
        sites=[plugin_sites.good, plugin_sites.broken],
        env={"JASECI_LIKE__API__PORT": "0"},
    )
    assert up.returncode == 4, up.stdout + up.stderr
    assert "broken plugins (--strict)" in up.stderr
    assert "ready:" not in up.stdout


# -- jaseci_like.testing ---------------------------------------------------------------------


class ClockConfig(ServiceConfig):
    enabled: bool = True
    label: str = "tick"


class ClockService(CommonService):
    name = "clock"
    config_schema = ClockConfig

    def run(self, hook: MemoryHook | None = None) -> None:
        self.app = self.config["label"]


class TestTheKitWithAnInCodePlugin:
    """Fixture overrides an author writes: an in-code plugin and its config."""

    @pytest.fixture
    def jl_plugin_objects(self) -> dict[str, object]:
        return {"clock": service_plugin(ClockService)}

    @pytest.fixture
    def jl_config(self) -> dict[str, object]:
        return {"clock": {"label": "tock"}}

    def test_jl_runtime_runs_only_the_plugin_under_test(self, jl_runtime: Runtime) -> None:
        assert jl_runtime.meta.service_names() == ["clock"]
        service = jl_runtime.hook.services["clock"]
        assert service.is_running()
        assert service.app == "tock"
        # Its own registry: the process-wide one never sees the plugin under test.
        assert "clock" not in MetaService().service_names()

    def test_the_factory_refuses_a_bad_config_and_takes_the_environment(
        self, jl_runtime_factory: RuntimeFactory, jl_data_dir: Path
    ) -> None:
        with pytest.raises(ConfigError, match=r"clock\.label"):
            jl_runtime_factory({"clock": {"label": ["not", "text"]}})
        runtime = jl_runtime_factory(environ={"JASECI_LIKE__CLOCK__LABEL": "from env"})
        assert runtime.hook.services["clock"].app == "from env"
        assert os.environ["XDG_DATA_HOME"] == str(jl_data_dir)

    def test_the_environment_of_the_caller_does_not_leak_in(
        self, jl_runtime_factory: RuntimeFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("JASECI_LIKE__CLOCK__LABEL", "from the developer's shell")
        runtime = jl_runtime_factory()
        assert runtime.hook.services["clock"].app == "tock"


class TestTheKitWithOurServers:
    """A built-in plugin run by the kit against the Redis our own tests start."""

    @pytest.fixture
    def jl_redis_url(self, redis_url: str) -> str:
        return redis_url

    @pytest.fixture
    def jl_entry_points(self) -> list[str]:
        return ["redis"]

    @pytest.fixture
    def jl_config(self, jl_redis_url: str) -> dict[str, object]:
        return {"redis": {"enabled": True, "url": jl_redis_url}}

    def test_the_redis_service_runs_against_the_given_server(
        self, jl_runtime: Runtime, jl_cli: JlCli
    ) -> None:
        service = jl_runtime.hook.services["redis"]
        assert service.is_running()
        assert service.app.ping() is True
        listed = jl_cli("plugins", "--strict")
        assert listed.returncode == 0, listed.stderr
        rows = {row["PLUGIN"]: row for row in parse_table(listed.stdout.splitlines())}
        assert rows["redis"]["STATUS"] == "loaded"
        assert rows["db"]["STATUS"] == "not allowed"


def test_a_missing_server_url_fails_saying_how_to_give_one(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        def test_needs_redis(jl_redis_url):
            pass

        def test_a_service_stopped_after_the_test(jl_runtime_factory):
            assert jl_runtime_factory(start=False).meta.service_names() == []
        """
    )
    env_var = "JASECI_LIKE_TEST_REDIS_URL"
    monkeypatch.delenv(env_var, raising=False)
    result = pytester.runpytest_subprocess("-p", "jaseci_like.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [f"*needs a Redis server: pass --jl-redis-url URL or set {env_var}*"]
    )
