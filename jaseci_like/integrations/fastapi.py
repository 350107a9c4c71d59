"""FastAPI / Starlette hosts: the runtime started on the server's own loop, and typed
dependencies for handlers.

    app = FastAPI(lifespan=lifespan(lambda: Runtime(config_file="app.yaml")))

    @app.get("/rows")
    async def rows(db: Annotated[DbService, Service(DbService)]) -> list[str]:
        async with db.app.connect() as conn:  # on this loop: awaited directly
            ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

from jaseci_like.errors import JaseciLikeError
from jaseci_like.runtime import Runtime
from jaseci_like.service import CommonService

S = TypeVar("S", bound=CommonService)
#: Where the lifespan keeps the runtime (``app.state.jaseci_like``).
STATE_KEY = "jaseci_like"


class RuntimeNotStarted(JaseciLikeError, RuntimeError):
    """A dependency asked for a service, but the app's lifespan started no runtime."""

    code = "runtime_not_started"


def lifespan(
    factory: Callable[[], Runtime],
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A lifespan that builds the runtime with ``factory`` and runs it on the server's
    loop (``async with``) for as long as the app serves."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        async with factory() as runtime:
            setattr(app.state, STATE_KEY, runtime)
            try:
                yield
            finally:
                delattr(app.state, STATE_KEY)

    return run


def runtime_of(connection: HTTPConnection) -> Runtime:
    """The runtime the app's :func:`lifespan` started."""
    runtime = getattr(connection.app.state, STATE_KEY, None)
    if not isinstance(runtime, Runtime):
        raise RuntimeNotStarted(
            "no jaseci-like runtime on this app: create it with "
            "FastAPI(lifespan=jaseci_like.integrations.fastapi.lifespan(...))"
        )
    return runtime


def Service(name: str | type[CommonService]) -> Any:
    """``Annotated[DbService, Service(DbService)]`` (or ``Service("db")``): the running
    service, looked up with ``await meta.aget_service``."""

    async def dependency(connection: HTTPConnection) -> CommonService:
        return await runtime_of(connection).meta.aget_service(name)

    return Depends(dependency)


def service(cls: type[S]) -> S:
    """``db: DbService = service(DbService)``: the same dependency, typed as ``cls``."""
    return cast(S, Service(cls))


async def get_runtime(connection: HTTPConnection) -> Runtime:
    """``runtime: Annotated[Runtime, Depends(get_runtime)]``."""
    return runtime_of(connection)
