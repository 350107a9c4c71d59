"""jaseci-like: a plugin-based service container runtime.

>>> from jaseci_like import CommonService, MetaService, ServiceState
"""

from jaseci_like.config.schema import CredentialUrl, SecretText, Sensitive, ServiceConfig
from jaseci_like.config_api import ConfigApi
from jaseci_like.errors import (
    ConfigError,
    DependencyError,
    DuplicateService,
    GlobError,
    IllegalTransition,
    JaseciLikeError,
    PluginError,
    ServiceNotFound,
    ServiceStartError,
)
from jaseci_like.hooks.memory import MemoryHook
from jaseci_like.hooks.orm import OrmHook, StoreUnavailable
from jaseci_like.hooks.redis import RedisHook
from jaseci_like.meta import MetaService, Registry
from jaseci_like.plugins.hookspecs import hookimpl
from jaseci_like.runtime import Runtime
from jaseci_like.service import CommonService
from jaseci_like.state import ServiceState

__all__ = [
    "CommonService",
    "ConfigApi",
    "ConfigError",
    "CredentialUrl",
    "DependencyError",
    "DuplicateService",
    "GlobError",
    "IllegalTransition",
    "JaseciLikeError",
    "MemoryHook",
    "MetaService",
    "OrmHook",
    "PluginError",
    "RedisHook",
    "Registry",
    "Runtime",
    "SecretText",
    "Sensitive",
    "ServiceConfig",
    "ServiceNotFound",
    "ServiceStartError",
    "ServiceState",
    "StoreUnavailable",
    "hookimpl",
]
