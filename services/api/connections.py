"""Bounds on client connections, which uvicorn's HTTP/1.1 protocol does not set itself.

- ``api.header_timeout``: a request's headers must all arrive within this many
  seconds of the connection opening, or of the first byte of the next request on
  a kept-alive one. A late client is answered 408 (a silent one is just closed),
  so a client that sends slowly, or nothing, holds no socket for long.
- ``api.max_connections``: a connection beyond this many open ones is answered
  503 with ``Retry-After`` at once and closed, so a flood of them cannot take
  every file descriptor of the process. The answer is sent before the request is
  read; the server then stops sending and reads for up to LINGER seconds, so the
  client's request arriving meanwhile does not reset the connection before the
  client reads the 503 (the client's end of the request closes it sooner).

:func:`bounded_protocol` makes the protocol class for one server's settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

#: Seconds a refused connection is kept reading (and discarding) after its 503.
LINGER = 1.0


def _answer(status: int, reason: str, code: str, message: str, *headers: str) -> bytes:
    body = json.dumps({"code": code, "message": message}).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on request headers and a connection cap;
    the bounds are class attributes set by :func:`bounded_protocol`."""

    header_timeout: ClassVar[float]
    max_connections: ClassVar[int]
    #: Whether the cap was reached and not yet left (to log the change once, not per refusal).
    at_limit: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._request_started = False
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the 503 is sent; what the client sends is not read
        if self._between_requests():
            if self._deadline is None:  # the next request on a kept-alive connection
                self._await_headers()
            self._request_started = True
        super().data_received(data)
        if not self._between_requests():
            self._stop_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if self._refused:
            return
        super().connection_lost(exc)
        cls = type(self)
        if cls.at_limit and len(self.connections) < self.max_connections:
            cls.at_limit = False
            log.info("api: below %d open connections again; accepting", self.max_connections)

    # -- the header deadline --------------------------------------------------------------------
    def _between_requests(self) -> bool:
        """No request is being served: the next bytes are a request's line and headers."""
        return self.cycle is None or self.cycle.response_complete

    def _await_headers(self) -> None:
        """Start the deadline of the next request's headers (none of it has arrived)."""
        self._stop_waiting()
        self._request_started = False
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        transport = self.transport
        # Upgraded (another protocol owns the socket), closing, or already served.
        if transport.get_protocol() is not self or transport.is_closing():
            return
        if not self._between_requests():
            return
        if self._request_started:
            message = (
                f"the request headers did not arrive within {self.header_timeout:g}s "
                "(api.header_timeout); send the whole request at once"
            )
            transport.write(_answer(408, "Request Timeout", "request_timeout", message))
        transport.close()

    # -- the connection cap ---------------------------------------------------------------------
    def _refuse(self, transport: asyncio.Transport) -> None:
        self._refused = True
        self.transport = transport
        cls = type(self)
        if not cls.at_limit:
            cls.at_limit = True
            log.warning(
                "api: %d connections open (api.max_connections); answering new ones 503 "
                "until some close",
                self.max_connections,
            )
        message = (
            f"the server has {self.max_connections} connections open, its limit; retry in a moment"
        )
        self._deadline = self.loop.call_later(LINGER, transport.close)
        transport.write(
            _answer(503, "Service Unavailable", "too_many_connections", message, "retry-after: 1")
        )
        try:
            transport.write_eof()
        except OSError:  # the client is gone already (a port probe): nothing to say
            transport.close()


def bounded_protocol(header_timeout: float, max_connections: int) -> type[BoundedH11Protocol]:
    """A protocol class (uvicorn ``Config(http=...)``) for one server's bounds; each
    server gets its own, so its "at the limit" state is its own."""
    return type(
        "BoundedH11Protocol",
        (BoundedH11Protocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )
