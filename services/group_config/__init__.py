"""The group_config service: group (project) dotfiles, with domains, groups, users.

>>> from jaseci_like_services.group_config import DotfileSpec, acting_as
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jaseci_like_services.group_config.app import BlockingGroupConfig, GroupConfig
    from jaseci_like_services.group_config.errors import (
        DomainNotFound,
        DotfileAlreadyExists,
        DotfileLimitError,
        DotfileLimitExceeded,
        DotfileNotFound,
        DotfileSpaceExceeded,
        EntityAlreadyExists,
        Forbidden,
        GroupConfigError,
        GroupNotFound,
        InvalidDotfileData,
        InvalidDotfilePath,
        InvalidInput,
        InvalidPermission,
        MembershipNotFound,
        NoCurrentUser,
        UserNotFound,
    )
    from jaseci_like_services.group_config.identity import acting_as, current_user
    from jaseci_like_services.group_config.types import (
        Credential,
        CurrentUser,
        Domain,
        Dotfile,
        DotfileChanges,
        DotfileList,
        DotfileOrder,
        DotfileResult,
        DotfileSpec,
        Group,
        GroupRef,
        Limits,
        Role,
        Submitter,
        Usage,
        User,
    )

# Loaded on first use: registering the plugin must not pay for SQLAlchemy models.
_MODULES = {
    "BlockingGroupConfig": "jaseci_like_services.group_config.app",
    "Credential": "jaseci_like_services.group_config.types",
    "CurrentUser": "jaseci_like_services.group_config.types",
    "Domain": "jaseci_like_services.group_config.types",
    "DomainNotFound": "jaseci_like_services.group_config.errors",
    "Dotfile": "jaseci_like_services.group_config.types",
    "DotfileAlreadyExists": "jaseci_like_services.group_config.errors",
    "DotfileChanges": "jaseci_like_services.group_config.types",
    "DotfileLimitError": "jaseci_like_services.group_config.errors",
    "DotfileLimitExceeded": "jaseci_like_services.group_config.errors",
    "DotfileList": "jaseci_like_services.group_config.types",
    "DotfileNotFound": "jaseci_like_services.group_config.errors",
    "DotfileOrder": "jaseci_like_services.group_config.types",
    "DotfileResult": "jaseci_like_services.group_config.types",
    "DotfileSpaceExceeded": "jaseci_like_services.group_config.errors",
    "DotfileSpec": "jaseci_like_services.group_config.types",
    "EntityAlreadyExists": "jaseci_like_services.group_config.errors",
    "Forbidden": "jaseci_like_services.group_config.errors",
    "Group": "jaseci_like_services.group_config.types",
    "GroupConfig": "jaseci_like_services.group_config.app",
    "GroupConfigError": "jaseci_like_services.group_config.errors",
    "GroupNotFound": "jaseci_like_services.group_config.errors",
    "GroupRef": "jaseci_like_services.group_config.types",
    "InvalidDotfileData": "jaseci_like_services.group_config.errors",
    "InvalidDotfilePath": "jaseci_like_services.group_config.errors",
    "InvalidInput": "jaseci_like_services.group_config.errors",
    "InvalidPermission": "jaseci_like_services.group_config.errors",
    "Limits": "jaseci_like_services.group_config.types",
    "MembershipNotFound": "jaseci_like_services.group_config.errors",
    "NoCurrentUser": "jaseci_like_services.group_config.errors",
    "Role": "jaseci_like_services.group_config.types",
    "Submitter": "jaseci_like_services.group_config.types",
    "Usage": "jaseci_like_services.group_config.types",
    "User": "jaseci_like_services.group_config.types",
    "UserNotFound": "jaseci_like_services.group_config.errors",
    "acting_as": "jaseci_like_services.group_config.identity",
    "current_user": "jaseci_like_services.group_config.identity",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BlockingGroupConfig",
    "Credential",
    "CurrentUser",
    "Domain",
    "DomainNotFound",
    "Dotfile",
    "DotfileAlreadyExists",
    "DotfileChanges",
    "DotfileLimitError",
    "DotfileLimitExceeded",
    "DotfileList",
    "DotfileNotFound",
    "DotfileOrder",
    "DotfileResult",
    "DotfileSpaceExceeded",
    "DotfileSpec",
    "EntityAlreadyExists",
    "Forbidden",
    "Group",
    "GroupConfig",
    "GroupConfigError",
    "GroupNotFound",
    "GroupRef",
    "InvalidDotfileData",
    "InvalidDotfilePath",
    "InvalidInput",
    "InvalidPermission",
    "Limits",
    "MembershipNotFound",
    "NoCurrentUser",
    "Role",
    "Submitter",
    "Usage",
    "User",
    "UserNotFound",
    "acting_as",
    "current_user",
]
