"""Errors of the api service: a stable ``code`` and an ``http_status`` each.

The HTTP layer answers every error as JSON ``{code, message}``; messages say
what to do next and never carry a key or any other secret.
"""

from __future__ import annotations

from typing import ClassVar

from jaseci_like import JaseciLikeError, ServiceStartError


class ApiError(JaseciLikeError):
    """Base of the errors the api service raises on purpose."""

    code: ClassVar[str] = "api_error"
    http_status: ClassVar[int] = 400
    exit_code: ClassVar[int] = 10


class Unauthorized(ApiError):
    """No API key, a key this service never issued, or a revoked one."""

    code = "unauthorized"
    http_status = 401
    exit_code = 7


class KeyRevoked(Unauthorized):
    """The API key that queued background work was revoked (or is gone) when it ran."""

    code = "api_key_revoked"


class KeyNotFound(ApiError, LookupError):
    """No API key with this id (``api-keys revoke``)."""

    code = "api_key_not_found"
    http_status = 404
    exit_code = 8


class TaskNotVisible(ApiError, LookupError):
    """A task id that is unknown, or that belongs to someone else (said the same way)."""

    code = "task_not_found"
    http_status = 404
    exit_code = 8


class PayloadTooLarge(ApiError):
    """A request body over ``api.max_body_bytes``."""

    code = "payload_too_large"
    http_status = 413


class ServiceUnavailable(ApiError):
    """A service the request needs is not running (or its database is unreachable).

    Retrying later may succeed; the answer carries ``Retry-After``.
    """

    code = "service_unavailable"
    http_status = 503
    exit_code = 5


class DatabaseUnavailable(ServiceUnavailable):
    """The database did not answer (after the retries for transient errors)."""

    code = "database_unavailable"


class ApiBindError(ServiceStartError):
    """The API cannot listen on ``api.host:api.port`` (taken, a privileged port, or
    an address of another machine): the message names the address and the OS reason."""

    code = "api_bind_failed"
