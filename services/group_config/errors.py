"""Errors of the group-config service: a stable ``code``, an ``http_status`` and a
command-line ``exit_code`` each; messages say what to do next.

Exit codes: 7 forbidden, 8 not found, 9 already exists, 10 invalid input,
11 a limit of the group reached.
"""

from __future__ import annotations

from jaseci_like.repository import AlreadyExists, RepositoryError


class GroupConfigError(RepositoryError):
    """Base of the errors the group-config service raises on purpose."""

    code = "group_config_error"
    http_status = 400
    exit_code = 10


class Forbidden(GroupConfigError):
    """The current user may not do this to this group (or entity)."""

    code = "forbidden"
    http_status = 403
    exit_code = 7


class NotFound(GroupConfigError):
    code = "not_found"
    http_status = 404
    exit_code = 8


class GroupNotFound(NotFound):
    code = "group_not_found"


class DotfileNotFound(NotFound):
    code = "dotfile_not_found"


class DomainNotFound(NotFound):
    code = "domain_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class MembershipNotFound(NotFound):
    code = "membership_not_found"


class DotfileAlreadyExists(GroupConfigError, AlreadyExists):
    code = "dotfile_already_exists"
    http_status = 409
    exit_code = 9


class EntityAlreadyExists(GroupConfigError, AlreadyExists):
    """A domain, group, user or membership that exists already."""

    code = "already_exists"
    http_status = 409
    exit_code = 9


class InvalidInput(GroupConfigError):
    """A value the service refuses before touching the database."""

    code = "invalid_input"
    http_status = 422
    exit_code = 10


class InvalidDotfilePath(InvalidInput):
    code = "invalid_dotfile_path"


class InvalidPermission(InvalidInput):
    code = "invalid_permission"


class InvalidDotfileData(InvalidInput):
    code = "invalid_dotfile_data"


class NoCurrentUser(GroupConfigError):
    """Nobody is acting: set ``current_user`` (``acting_as``) or pass ``user=``."""

    code = "no_current_user"
    http_status = 401
    exit_code = 7


class DotfileLimitError(GroupConfigError):
    """A limit of the group (count or bytes) would be passed."""

    code = "dotfile_limit"
    http_status = 400
    exit_code = 11

    def __init__(self, message: str, leftover_space: int) -> None:
        super().__init__(message)
        self.leftover_space = leftover_space


class DotfileLimitExceeded(DotfileLimitError):
    """The group has as many dotfiles as it may have."""

    code = "dotfile_limit_exceeded"


class DotfileSpaceExceeded(DotfileLimitError):
    """The bytes of the group's paths and data would pass the limit."""

    code = "dotfile_space_exceeded"
