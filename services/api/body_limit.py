"""Refuse request bodies over a size with 413, as JSON, before the app parses them.

A declared ``Content-Length`` over the limit is answered at once; a body sent
without one (chunked) is counted as it arrives and refused when it passes the
limit (the app sees a 413 ``HTTPException`` from ``receive``).
"""

from __future__ import annotations

from jaseci_like_services.api.error_responses import error_json
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(limit: int) -> str:
    return f"the request body is over {limit} bytes (api.max_body_bytes); send less"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # h11 refuses a malformed length before we see it
                if declared > limit:
                    response = error_json(
                        413, "payload_too_large", too_large(limit), {"Connection": "close"}
                    )
                    await response(scope, receive, send)
                    return
                break
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, too_large(limit))
            return message

        await self.app(scope, counted, send)
