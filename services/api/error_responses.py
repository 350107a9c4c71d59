"""Every error as JSON ``{code, message}`` with its HTTP status.

Typed errors carry their own status (``http_status``: group_config's and ours)
and code. A database that does not answer (after group_config's retries for
transient errors) is a 503 with a retriable code and ``Retry-After``. Anything
unexpected is a 500 whose body says nothing of the cause; the log has it, with
secrets masked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from jaseci_like_services.api.dto.v1.common import NO_CONTROL
from jaseci_like_services.api.dto.v1.dotfiles import PERMISSION
from jaseci_like_services.api.errors import DatabaseUnavailable, ServiceUnavailable
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from jaseci_like import JaseciLikeError, StoreUnavailable
from jaseci_like.config.secrets import mask_url
from jaseci_like.repository import InvalidQuery, is_transient

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying a 503.
RETRY_AFTER = "1"
#: Codes of the statuses Starlette raises itself (unknown route, wrong method...).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
#: Errors of other services whose meaning is "not now": 503.
_UNAVAILABLE_CODES = frozenset(
    {"task_service_not_running", "task_db_unavailable", StoreUnavailable.code}
)
_STATUS_OF_CODE = {"task_not_found": 404, "task_arguments_invalid": 422}
MAX_DETAILS = 5

Handler = Callable[[Request, Exception], Awaitable[Response]]


def error_json(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if status == 503:
        headers = {**(headers or {}), "Retry-After": RETRY_AFTER}
    elif status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _status_of(exc: JaseciLikeError) -> int | None:
    status = getattr(exc, "http_status", None)
    if isinstance(status, int) and 400 <= status < 600:
        return status
    if exc.code in _UNAVAILABLE_CODES:
        return 503
    return _STATUS_OF_CODE.get(exc.code)


def database_down(exc: BaseException) -> bool:
    """The database did not answer: a transient error left after the retries, a lost
    or refused connection, or no pooled connection to be had."""
    if isinstance(exc, OSError | PoolTimeout | OperationalError | InterfaceError):
        return True
    return is_transient(exc)


async def on_typed_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JaseciLikeError)
    status = _status_of(exc)
    if status is None:
        return await on_unexpected(request, exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, mask_url(str(exc)))
    return error_json(status, exc.code, exc.message)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return error_json(exc.status_code, code, detail, dict(exc.headers or {}))


def _where(loc: tuple[int | str, ...]) -> str:
    # Each branch of a union adds its schema to the location ("function-after[...]"):
    # the name of no field, and long.
    named = (str(part) for part in loc if not _branch(part))
    return ".".join(named) or "request"


def _branch(part: int | str) -> bool:
    return isinstance(part, str) and ("[" in part or "(" in part)


#: What the patterns of our schemas ask for, in words (pydantic shows the expression).
_PATTERN_MEANS = {
    NO_CONTROL: "must not contain control characters",
    PERMISSION: "must be three octal digits, such as 644 or 755",
}
#: Where the paging input of a request sits: refused there, it is an ``invalid_query``
#: (400), as a cursor the query cannot use is.
_PAGING = (("query", "limit"), ("query", "offset"), ("body", "page"))


def _said(error: Mapping[str, Any]) -> str:
    if error.get("type") == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern"))
        return _PATTERN_MEANS.get(pattern, "has characters this field does not take")
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _paging(loc: tuple[int | str, ...]) -> bool:
    return any(loc[: len(where)] == where for where in _PAGING)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    """422 naming each refused field (an unknown field too); the input is not echoed.
    Refused paging input (limit, offset, a page of a body) is a 400 ``invalid_query``."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if len(errors) > 1:
        # A value refused by the `X | None` of an optional field: "should be None" is no help.
        errors = [e for e in errors if e.get("type") != "none_required"] or errors
    locs = [tuple(e.get("loc", ())) for e in errors]
    parts = [f"{_where(loc)}: {_said(e)}" for loc, e in zip(locs, errors, strict=True)]
    more = f" (and {len(parts) - MAX_DETAILS} more)" if len(parts) > MAX_DETAILS else ""
    message = "; ".join(parts[:MAX_DETAILS]) + more
    if locs and all(_paging(loc) for loc in locs):
        return error_json(400, InvalidQuery.code, message)
    return error_json(422, "validation_error", message or "the request is not valid")


async def on_database_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DataError):
        # The database refused a value the checks let through: the request's fault.
        return error_json(422, "invalid_input", "the database refused a value of this request")
    if database_down(exc):
        log.warning(
            "%s %s: the database is unavailable: %s",
            request.method,
            request.url.path,
            mask_url(f"{type(exc).__name__}: {exc}"),
        )
        unavailable = DatabaseUnavailable("the database is not answering; retry in a moment")
        return error_json(503, unavailable.code, unavailable.message)
    return await on_unexpected(request, exc)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error(
        "%s %s failed: %s",
        request.method,
        request.url.path,
        mask_url(f"{type(exc).__name__}: {exc}"),
        exc_info=log.isEnabledFor(logging.DEBUG),
    )
    return error_json(500, "internal_error", "the server failed to answer this request")


def unavailable(what: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"the {what} service is not running; retry in a moment")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    handlers: list[tuple[type[Exception], Handler]] = [
        (JaseciLikeError, on_typed_error),
        (HTTPException, on_http_error),
        (RequestValidationError, on_validation_error),
        (DBAPIError, on_database_error),
        (PoolTimeout, on_database_error),
        (OSError, on_database_error),
        (Exception, on_unexpected),
    ]
    for kind, handler in handlers:
        app.add_exception_handler(kind, handler)
