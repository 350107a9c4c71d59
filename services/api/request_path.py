"""Route on the path the client sent, byte for byte.

Three things stood between a URL and the checks of the routes:

- uvicorn decodes a percent-escape that is not UTF-8 (``%FF``) to U+FFFD, so two
  different byte strings could name one dotfile. :class:`Utf8Path` decodes them to
  lone surrogates instead, which every path parameter refuses as "not UTF-8 text".
- ``{path:path}`` is ``.*`` without DOTALL: ``a%0Ab`` matched no route (a bare 404)
  and ``.nl%0A`` matched with ``.nl``. Dotfile paths use ``{path:text}``, which takes
  every character, and the path's own check refuses the newline.
- route patterns end in ``$``, which also matches before a final newline, so
  ``/v1/groups%0A`` was ``/v1/groups``. :func:`whole_path` (a dependency of every
  route) answers 404 when the route matched all but a final newline.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from fastapi import HTTPException, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send


class Utf8Path:
    """Keeps a request path that is not UTF-8 distinct from every other path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] in ("http", "websocket") else None
        if isinstance(raw, bytes):
            octets = unquote_to_bytes(raw)
            try:
                octets.decode("utf-8")
            except UnicodeDecodeError:
                # raw_path holds root_path too (uvicorn), as "path" does. In place: the
                # outer middlewares read what routing adds to this scope.
                scope["path"] = octets.decode("utf-8", "surrogateescape")
        await self.app(scope, receive, send)


class TextConvertor(Convertor[str]):
    """``{name:text}``: the rest of the path, ``/`` and newlines included."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


#: The convertor's name, registered on import: ``f"/{{path:{TEXT}}}"``.
TEXT = "text"
register_url_convertor(TEXT, TextConvertor())


async def whole_path(request: Request) -> None:
    """404 for a path whose final newline the route did not match: the route's ``$``
    let it go, and no parameter at the end of the path holds it."""
    path: str = request.scope["path"]
    if path.endswith("\n") and not any(
        isinstance(value, str) and value.endswith("\n") and path.endswith(value)
        for value in request.path_params.values()
    ):
        raise HTTPException(404)
