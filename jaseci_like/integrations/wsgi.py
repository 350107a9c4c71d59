"""WSGI hosts (Flask, Django, plain WSGI): the runtime on its own loop thread, reached
from request threads through its blocking portal.

    runtime = Runtime(config_file="app.yaml")
    app = Flask(__name__)
    embedded = attach(app, runtime)   # starts it; stopped at interpreter exit

    @app.get("/rows")
    def rows() -> list[str]:
        db = embedded.get(DbService)
        return embedded.run(list_rows(db.app))
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar, overload

from jaseci_like.runtime import Runtime
from jaseci_like.service import CommonService

S = TypeVar("S", bound=CommonService)
T = TypeVar("T")
#: Where :func:`attach` keeps itself on a Flask app (``app.extensions``).
EXTENSION_KEY = "jaseci_like"


class Embedded:
    """A started runtime as a WSGI host uses it: typed lookups and blocking calls."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def start(self) -> Embedded:
        self.runtime.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self.runtime.stop(timeout)

    @overload
    def get(self, name: type[S]) -> S: ...
    @overload
    def get(self, name: str) -> CommonService: ...
    def get(self, name: str | type[S]) -> CommonService | S:
        return self.runtime.meta.get_service(name)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the runtime's loop (where the db engine lives); block for it."""
        return self.runtime.meta.loop.run(coro, timeout)

    def middleware(self, app: WsgiApp) -> WsgiApp:
        """``app`` with this in ``environ["jaseci_like"]`` for each request."""

        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            environ[EXTENSION_KEY] = self
            return app(environ, start_response)

        return wrapped


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def attach(app: Any, runtime: Runtime, *, stop_at_exit: bool = True) -> Embedded:
    """Start ``runtime`` and keep it on a Flask app (``app.extensions["jaseci_like"]``,
    when the app has ``extensions``); stopped at interpreter exit unless told not."""
    embedded = Embedded(runtime).start()
    extensions = getattr(app, "extensions", None)
    if isinstance(extensions, dict):
        extensions[EXTENSION_KEY] = embedded
    if stop_at_exit:
        atexit.register(embedded.stop)
    return embedded
