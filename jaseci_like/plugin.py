"""Everything a plugin author needs, from one module: ``from jaseci_like.plugin import ...``.

The hook marker and the names of the hooks (``jaseci-like plugins --hooks`` prints
each with its docstring), the service base class and its config schema types
(secrets included), the errors a service raises, the runtime and config API a
command uses, and the helpers the built-in commands use (runtime options, one
clear error line and exit code, tables). What is not here is internal to the
runtime and may change.

>>> from jaseci_like.plugin import CommonService, ServiceConfig, SecretText, hookimpl
>>> sorted(HOOKS)[:2]
['jaseci_like_commands', 'jaseci_like_profiles']
"""

from __future__ import annotations

from jaseci_like.cli.main import handle_errors, load_runtime, runtime_options
from jaseci_like.cli.output import echo_table
from jaseci_like.config.schema import CredentialUrl, SecretText, Sensitive, ServiceConfig
from jaseci_like.config_api import ConfigApi
from jaseci_like.errors import (
    ConfigError,
    DependencyError,
    JaseciLikeError,
    PluginError,
    ServiceNotFound,
    ServiceStartError,
)
from jaseci_like.hooks.memory import MemoryHook
from jaseci_like.plugins import hookspecs
from jaseci_like.plugins.hookspecs import hookimpl
from jaseci_like.runtime import Runtime
from jaseci_like.service import CommonService
from jaseci_like.state import ServiceState

#: The hooks a plugin may implement (each a function of :mod:`jaseci_like.plugins.hookspecs`).
HOOKS = frozenset(
    name for name in vars(hookspecs) if hasattr(getattr(hookspecs, name), "jaseci_like_spec")
)

__all__ = [
    "HOOKS",
    "CommonService",
    "ConfigApi",
    "ConfigError",
    "CredentialUrl",
    "DependencyError",
    "JaseciLikeError",
    "MemoryHook",
    "PluginError",
    "Runtime",
    "SecretText",
    "Sensitive",
    "ServiceConfig",
    "ServiceNotFound",
    "ServiceStartError",
    "ServiceState",
    "echo_table",
    "handle_errors",
    "hookimpl",
    "load_runtime",
    "runtime_options",
]
