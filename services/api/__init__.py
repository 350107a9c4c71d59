"""The api service: the versioned HTTP API over group_config and task.

>>> from jaseci_like_services.api import ApiService
>>> ApiService.name
'api'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jaseci_like_services.api.errors import (
        ApiError,
        DatabaseUnavailable,
        KeyNotFound,
        PayloadTooLarge,
        ServiceUnavailable,
        TaskNotVisible,
        Unauthorized,
    )
    from jaseci_like_services.api.keys import ApiKeys
    from jaseci_like_services.api.service import ApiService
    from jaseci_like_services.api.types import ApiKeyInfo, IssuedKey

# Loaded on first use: registering the plugin must not pay for FastAPI.
_MODULES = {
    "ApiError": "jaseci_like_services.api.errors",
    "ApiKeyInfo": "jaseci_like_services.api.types",
    "ApiKeys": "jaseci_like_services.api.keys",
    "ApiService": "jaseci_like_services.api.service",
    "DatabaseUnavailable": "jaseci_like_services.api.errors",
    "IssuedKey": "jaseci_like_services.api.types",
    "KeyNotFound": "jaseci_like_services.api.errors",
    "PayloadTooLarge": "jaseci_like_services.api.errors",
    "ServiceUnavailable": "jaseci_like_services.api.errors",
    "TaskNotVisible": "jaseci_like_services.api.errors",
    "Unauthorized": "jaseci_like_services.api.errors",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ApiError",
    "ApiKeyInfo",
    "ApiKeys",
    "ApiService",
    "DatabaseUnavailable",
    "IssuedKey",
    "KeyNotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TaskNotVisible",
    "Unauthorized",
]
