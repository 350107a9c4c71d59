"""The files of a new plugin distribution, as ``string.Template`` text.

Placeholders: ``$name`` (entry point, service, config section), ``$dist``,
``$package``, ``$camel`` (class names), ``$command``, ``$profile``, ``$env_prefix``.
The generated code passes ruff and mypy (strict); a test writes, installs and tests it.
"""

from __future__ import annotations

from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jaseci_like.scaffold import PluginNames

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "The $name plugin for jaseci-like."
requires-python = ">=3.11"
dependencies = ["jaseci-like"]

[project.optional-dependencies]
test = ["pytest>=8"]

# How jaseci-like finds the plugin: the name on the left is the plugin's name
# (what `plugins.allow` / `plugins.deny` refer to).
[project.entry-points.jaseci_like]
$name = "$package.plugin"

[tool.setuptools]
packages = ["$package"]

[tool.setuptools.package-data]
$package = ["py.typed", "profiles/*.yaml"]

[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP", "SIM", "RUF"]

[tool.mypy]
strict = true

[tool.pytest.ini_options]
testpaths = ["tests"]
# The plugin author's kit: jl_runtime, jl_runtime_factory, jl_cli, jl_config...
addopts = "-p jaseci_like.testing"
# The plugins those fixtures load (add built-ins the service needs, e.g. "db").
jaseci_like_plugins = ["$name"]
"""

README = """\
# $dist

The `$name` plugin for jaseci-like: the `$name` service, the `jaseci-like $command`
command and the `$profile` profile.

```sh
pip install -e '.[test]'
pytest
jaseci-like plugins            # lists $name with its version
jaseci-like $command world
```

Configure it in the `$name:` section of the config file, or with
`${env_prefix}GREETING=...`; `api_token` and the password of `url` are secrets:
masked in every output, encrypted when stored.
"""

INIT = '''\
"""The $name plugin for jaseci-like."""
'''

SERVICE = '''\
"""The $name service: its config, the client it wraps, how it starts and stops."""

from __future__ import annotations

from typing import Any, ClassVar

from jaseci_like.plugin import CommonService, CredentialUrl, MemoryHook, SecretText, ServiceConfig
from pydantic import Field


class ${camel}Config(ServiceConfig):
    """The `$name:` section; a wrong type or an unknown key is refused at load."""

    greeting: str = "hello"
    #: A URL whose password is a secret: masked in output, encrypted when stored.
    url: CredentialUrl = "$name://localhost:7000/"
    #: A secret: masked in output, encrypted when stored.
    api_token: SecretText = ""
    timeout: float = Field(default=5.0, gt=0)


class ${camel}Client:
    """What the service wraps; replace it with your library's client."""

    def __init__(self, config: ${camel}Config) -> None:
        self.config = config
        self.closed = False

    def greet(self, who: str) -> str:
        return f"{self.config.greeting}, {who}!"

    def close(self) -> None:
        self.closed = True


class ${camel}Service(CommonService):
    """`app` is a ${camel}Client, made at start and closed at stop."""

    name = "$name"
    config_schema = ${camel}Config
    default_config: ClassVar[dict[str, Any]] = {"enabled": True}

    @property
    def client(self) -> ${camel}Client:
        client = self.app
        if not isinstance(client, ${camel}Client):
            raise RuntimeError(f"the $name service is not running: {self.error}")
        return client

    def run(self, hook: MemoryHook | None = None) -> None:
        settings = self.settings
        assert isinstance(settings, ${camel}Config)  # start() runs only a valid config
        self.app = ${camel}Client(settings)

    def teardown(self) -> None:
        if isinstance(self.app, ${camel}Client):
            self.app.close()

    def health(self) -> bool:
        return isinstance(self.app, ${camel}Client) and not self.app.closed
'''

PLUGIN = '''\
"""The hooks of the $name plugin (`jaseci-like plugins --hooks` lists them all)."""

from __future__ import annotations

from pathlib import Path

import click
from jaseci_like.plugin import CommonService, ConfigApi, Runtime, hookimpl

from $package.service import ${camel}Service


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [${camel}Service]


@hookimpl
def jaseci_like_profiles() -> dict[str, Path]:
    return {"$profile": Path(__file__).with_name("profiles") / "$profile.yaml"}


@hookimpl
def jaseci_like_commands(cli: click.Group) -> None:
    @cli.command("$command")
    @click.argument("who", default="world")
    def hello(who: str) -> None:
        """Greet WHO with the greeting of the $name config."""
        runtime = Runtime()
        try:
            runtime.open_store()  # values saved with `config set` count too
            greeting = ConfigApi(runtime.hook).config_get("$name")["greeting"]
        finally:
            runtime.stop()
        click.echo(f"{greeting}, {who}!")
'''

PROFILE = """\
# `jaseci-like up --profile $profile`: layered above the packaged defaults.
$name:
  greeting: hi from the $profile profile
"""

TESTS = '''\
"""The $name plugin, run in isolated runtimes by the jaseci_like.testing fixtures."""

from __future__ import annotations

from typing import Any

import pytest
from jaseci_like.plugin import ConfigError
from jaseci_like.testing import JlCli, RuntimeFactory

from $package.service import ${camel}Service

SECRET = "s3cret-token-$name"


def test_the_service_runs_and_stops(jl_runtime_factory: RuntimeFactory) -> None:
    runtime = jl_runtime_factory()
    service = runtime.hook.services["$name"]
    assert isinstance(service, ${camel}Service)
    assert service.is_running()
    assert service.client.greet("world") == "hello, world!"
    assert service.check_health()
    client = service.client
    assert runtime.stop() == []
    assert client.closed


@pytest.mark.parametrize(
    ("section", "key"),
    [({"timeout": -1}, "timeout"), ({"no_such_key": 1}, "no_such_key")],
)
def test_a_bad_config_is_refused_naming_the_key(
    jl_runtime_factory: RuntimeFactory, section: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=f"$name.{key}"):
        jl_runtime_factory({"$name": section})


def test_the_environment_and_the_profile_configure_it(jl_runtime_factory: RuntimeFactory) -> None:
    runtime = jl_runtime_factory(environ={"${env_prefix}GREETING": "hey"})
    assert runtime.hook.services["$name"].config["greeting"] == "hey"
    runtime = jl_runtime_factory(profile="$profile")
    assert runtime.hook.services["$name"].config["greeting"] == "hi from the $profile profile"


def test_secrets_are_never_shown(jl_cli: JlCli, jl_runtime_factory: RuntimeFactory) -> None:
    config = {"$name": {"api_token": SECRET, "url": "$name://bob:pa55word@example.org/"}}
    service = jl_runtime_factory(config).hook.services["$name"]
    assert isinstance(service, ${camel}Service)
    assert service.client.config.api_token == SECRET  # the service reads the real value
    shown = jl_cli("config", "show", "$name", config=config)
    assert shown.returncode == 0, shown.stderr
    assert "$name.api_token" in shown.stdout
    assert SECRET not in shown.stdout + shown.stderr
    assert "pa55word" not in shown.stdout + shown.stderr


def test_the_command_and_the_plugins_listing(jl_cli: JlCli) -> None:
    hello = jl_cli("$command", "world", env={"${env_prefix}GREETING": "howdy"})
    assert (hello.returncode, hello.stdout.strip()) == (0, "howdy, world!"), hello.stderr
    listed = jl_cli("plugins", "--strict")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line.split() for line in listed.stdout.splitlines() if line.startswith("$name ")]
    assert row[1:4] == ["0.1.0", "loaded", "$name"]
'''


def render(names: PluginNames) -> dict[str, str]:
    """Relative path -> text of every file of the new distribution."""
    values = {
        "name": names.name,
        "dist": names.dist,
        "package": names.package,
        "camel": names.camel,
        "command": names.command,
        "profile": names.profile,
        "env_prefix": names.env_prefix,
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{names.package}/__init__.py": INIT,
        f"{names.package}/py.typed": "",
        f"{names.package}/service.py": SERVICE,
        f"{names.package}/plugin.py": PLUGIN,
        f"{names.package}/profiles/{names.profile}.yaml": PROFILE,
        "tests/__init__.py": "",
        f"tests/test_{names.name}.py": TESTS,
    }
    return {path: Template(text).substitute(values) for path, text in files.items()}
