"""Real third-party plugin distributions, written to disk and installed with pip.

Each distribution has its own ``pyproject.toml`` that declares its plugin in the
``[project.entry-points.jaseci_like]`` group, exactly as a package published by
someone else would. :func:`install` puts them into a plain directory (a "site"
dir) with ``pip install --target``; that directory on ``sys.path`` or
``PYTHONPATH`` is all ``importlib.metadata.entry_points()`` needs to find them.

The good plugin (``demo``) provides two services, ``demo`` and ``demo_child``
(which requires ``demo``), a profile ``demo-loud`` and a command ``demo-hello``.
Its services write ``<marker_dir>/<service>.started`` in ``run()`` and
``<marker_dir>/<service>.stopped`` in ``teardown()``, and print
``teardown <service>`` and ``daemon <service> exited`` to stdout, so a test can
see from outside the process what started and in which order things stopped.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Entry-point (plugin) names of the distributions below.
GOOD = "demo"
BROKEN_IMPORT = "broken_import"
BROKEN_HOOK = "broken_hook"
BROKEN_CLASS = "broken_class"
BROKEN_TYPO = "broken_typo"
BROKEN_ARGS = "broken_args"
#: Provides a second service named ``demo``; sorts after ``demo``, so it is the one refused.
TWIN = "twin_demo"
#: Provides a service that requires one no plugin provides.
ORPHAN = "orphan"

#: What each broken plugin's error must mention (``PluginInfo.error``).
BROKEN_ERRORS: Mapping[str, str] = {
    BROKEN_IMPORT: "jl_no_such_module_anywhere",
    BROKEN_HOOK: "the services hook of broken_hook exploded",
    BROKEN_CLASS: "not a CommonService subclass",
    BROKEN_TYPO: "jaseci_like_service",
    BROKEN_ARGS: "command_group",
    TWIN: "already provided",
}


@dataclass(frozen=True)
class Dist:
    """A source distribution: name, one package, its files, its plugin entry points."""

    name: str
    package: str
    files: Mapping[str, str]
    entry_points: Mapping[str, str]

    def write(self, root: Path) -> Path:
        """Write the project under ``root/<name>``; returns its directory."""
        project = root / self.name
        package = project / self.package
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f'"""The {self.name} plugin."""\n')
        for relative, text in self.files.items():
            path = package / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        entry_points = "\n".join(f'{key} = "{value}"' for key, value in self.entry_points.items())
        (project / "pyproject.toml").write_text(
            textwrap.dedent(
                """\
                [build-system]
                requires = ["setuptools"]
                build-backend = "setuptools.build_meta"

                [project]
                name = "{name}"
                version = "0.1.0"
                description = "A third-party jaseci-like plugin used by the tests."
                requires-python = ">=3.11"
                dependencies = ["jaseci-like"]

                [project.entry-points.jaseci_like]
                {entry_points}

                [tool.setuptools]
                packages = ["{package}"]

                [tool.setuptools.package-data]
                {package} = ["*.yaml"]
                """
            ).format(name=self.name, package=self.package, entry_points=entry_points),
            encoding="utf-8",
        )
        return project


def install(site: Path, projects: Sequence[Path], python: str = sys.executable) -> Path:
    """``pip install --target site`` the projects (no index, no deps, no build isolation)."""
    site.mkdir(parents=True, exist_ok=True)
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-index",
        "--no-deps",
        "--no-build-isolation",
        "--target",
        str(site),
        *(str(p) for p in projects),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"installing test plugins failed ({done.returncode}): {' '.join(command)}\n"
            f"{done.stdout}\n{done.stderr}"
        )
    return site


def build_site(root: Path, dists: Sequence[Dist]) -> Path:
    """Write ``dists`` under ``root/src`` and install them into ``root/site``."""
    projects = [dist.write(root / "src") for dist in dists]
    return install(root / "site", projects)


# -- the good plugin -------------------------------------------------------------------

_DEMO_SERVICE = '''
"""Two small services: `demo` and `demo_child`, which needs `demo`."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jaseci_like import CommonService, MemoryHook, ServiceConfig

log = logging.getLogger("jl_demo_plugin")
_say_lock = threading.Lock()


def say(line: str) -> None:
    """One whole line on stdout, even when threads say things at once."""
    with _say_lock:
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()


class RetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=3, ge=1)
    backoff: float = 0.5


class DemoConfig(ServiceConfig):
    greeting: str = "hello"
    interval: float = Field(default=0.02, gt=0)
    port: int = 7000
    tags: list[str] = Field(default_factory=list)
    url: str = "demo://localhost/"
    password: str = ""
    marker_dir: str | None = None
    fail: bool = False
    retry: RetryConfig = RetryConfig()


class DemoApp:
    """What the service wraps: a greeting and a tick counter."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting
        self.ticks = 0


class DemoService(CommonService):
    name = "demo"
    config_schema = DemoConfig
    default_config = {
        "enabled": True,
        "greeting": "hello",
        "interval": 0.02,
        "retry": {"attempts": 3, "backoff": 0.5},
    }

    def _mark(self, what: str) -> None:
        folder = self.config.get("marker_dir")
        if folder:
            Path(folder, f"{self.service_name()}.{what}").write_text(what)

    def run(self, hook: MemoryHook | None = None) -> None:
        if self.config["fail"]:
            raise RuntimeError(f"{self.service_name()} was told to fail (fail: true)")
        log.info("%s connecting to %s", self.service_name(), self.config["url"])
        self.app = DemoApp(self.config["greeting"])
        self._mark("started")
        log.info("%s started", self.service_name())

    def post_run(self, hook: MemoryHook | None = None) -> None:
        self.spawn_daemon(ticker=self._tick)

    def _tick(self, stop: threading.Event) -> None:
        app = self.app
        while not stop.wait(self.config["interval"]):
            app.ticks += 1
        say(f"daemon {self.service_name()} exited")

    def teardown(self) -> None:
        say(f"teardown {self.service_name()}")
        log.info("%s stopped", self.service_name())
        self._mark("stopped")


class DemoChildService(DemoService):
    name = "demo_child"
    requires = ("demo",)
'''

_DEMO_PLUGIN = '''
"""Hook implementations of the demo plugin."""

from __future__ import annotations

from pathlib import Path

import click

from jaseci_like import CommonService, hookimpl
from jl_demo_plugin.service import DemoChildService, DemoService


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [DemoService, DemoChildService]


@hookimpl
def jaseci_like_profiles() -> dict[str, Path]:
    return {"demo-loud": Path(__file__).with_name("loud.yaml")}


@hookimpl
def jaseci_like_commands(cli: click.Group) -> None:
    @cli.command("demo-hello")
    def demo_hello() -> None:
        """Say hello from the demo plugin."""
        click.echo("hello from the demo plugin")


@hookimpl
def jaseci_like_user_created(session: object, user: object) -> list[str]:
    return [f"demo welcomes {getattr(user, 'email')}"]
'''

_DEMO_PROFILE = """
# A profile shipped by a third-party plugin.
demo:
  greeting: HELLO
  port: 7100
"""


def good_plugin() -> Dist:
    """The well-behaved plugin ``demo``."""
    return Dist(
        name="jl-demo-plugin",
        package="jl_demo_plugin",
        files={
            "service.py": _DEMO_SERVICE,
            "plugin.py": _DEMO_PLUGIN,
            "loud.yaml": _DEMO_PROFILE,
        },
        entry_points={GOOD: "jl_demo_plugin.plugin"},
    )


# -- broken plugins ------------------------------------------------------------------------


def _one_module(plugin: str, source: str) -> Dist:
    package = f"jl_{plugin}_plugin"
    return Dist(
        name=f"jl-{plugin.replace('_', '-')}-plugin",
        package=package,
        files={"plugin.py": source},
        entry_points={plugin: f"{package}.plugin"},
    )


def broken_import_plugin() -> Dist:
    """A plugin whose module cannot be imported."""
    return _one_module(
        BROKEN_IMPORT,
        """
        import jl_no_such_module_anywhere  # noqa: F401
        """,
    )


def broken_hook_plugin() -> Dist:
    """A plugin whose services hook raises."""
    return _one_module(
        BROKEN_HOOK,
        """
        from jaseci_like import hookimpl


        @hookimpl
        def jaseci_like_services():
            raise RuntimeError("the services hook of broken_hook exploded")
        """,
    )


def broken_class_plugin() -> Dist:
    """A plugin that offers something that is not a service class."""
    return _one_module(
        BROKEN_CLASS,
        """
        from jaseci_like import hookimpl


        class NotAService:
            name = "not_a_service"


        @hookimpl
        def jaseci_like_services():
            return [NotAService]
        """,
    )


def broken_typo_plugin() -> Dist:
    """A plugin with a hook implementation whose name misspells the hook."""
    return _one_module(
        BROKEN_TYPO,
        """
        from jaseci_like import hookimpl


        @hookimpl
        def jaseci_like_service():
            return []
        """,
    )


def broken_args_plugin() -> Dist:
    """A plugin whose hook implementation asks for an argument the spec does not have."""
    return _one_module(
        BROKEN_ARGS,
        """
        from jaseci_like import hookimpl


        @hookimpl
        def jaseci_like_commands(command_group):
            pass
        """,
    )


def twin_plugin() -> Dist:
    """A plugin that provides a second, different service named ``demo``."""
    return _one_module(
        TWIN,
        """
        from jaseci_like import CommonService, hookimpl


        class TwinDemoService(CommonService):
            name = "demo"


        @hookimpl
        def jaseci_like_services():
            return [TwinDemoService]
        """,
    )


def broken_plugins() -> list[Dist]:
    """Every plugin that must be reported as broken without harming the others."""
    return [
        broken_import_plugin(),
        broken_hook_plugin(),
        broken_class_plugin(),
        broken_typo_plugin(),
        broken_args_plugin(),
        twin_plugin(),
    ]


def orphan_plugin() -> Dist:
    """A plugin whose service requires a service that no plugin provides."""
    return _one_module(
        ORPHAN,
        """
        from jaseci_like import CommonService, hookimpl


        class OrphanService(CommonService):
            name = "orphan"
            requires = ("jl_nobody_provides_this",)
            default_config = {"enabled": True}


        @hookimpl
        def jaseci_like_services():
            return [OrphanService]
        """,
    )
