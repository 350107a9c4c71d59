"""uvicorn serving an ASGI app on the runtime's event loop.

The socket is bound here, before uvicorn starts, so a taken port is an error of
``start`` (and port 0 gets a free port known at once). ``serve()`` runs as a task
of the shared loop; ``stop`` sets ``should_exit``, lets the requests in flight
drain (see :class:`RequestTracker`) and awaits the task within its budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import socket
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future

import uvicorn
from jaseci_like_services.api.config import ApiConfig
from jaseci_like_services.api.connections import bounded_protocol
from jaseci_like_services.api.errors import ApiBindError
from starlette.types import ASGIApp

from jaseci_like.loop import RuntimeLoop

log = logging.getLogger(__name__)

#: Seconds ``start`` waits for uvicorn to take the socket.
START_TIMEOUT = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6; port 0: a free one).

    Raises :class:`ApiBindError` naming the address and the OS reason.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ApiBindError(_cannot_listen(host, port, exc)) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ApiBindError(_cannot_listen(host, port, exc)) from exc
    except BaseException:
        sock.close()
        raise
    return sock


#: What to do next, by the errno of a failed bind.
_BIND_HINTS = {
    errno.EADDRINUSE: "another process listens there: stop it, or set api.port to a free "
    "port (0 picks one at start)",
    errno.EACCES: "ports below 1024 need privileges: set api.port to 1024 or above",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address: set api.host "
    "(127.0.0.1 for this machine only, 0.0.0.0 for every interface)",
}


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror):
        hint = "set api.host to an address or a name this machine resolves"
    else:
        hint = _BIND_HINTS.get(exc.errno or 0, "check api.host and api.port")
    return f"cannot listen on {shown}: {reason}; {hint}"


#: File descriptors the process needs besides client connections (databases, logs...).
_SPARE_FDS = 64


def _check_file_limit(max_connections: int) -> None:
    """Warn when ``api.max_connections`` does not fit the open-file limit: accepting
    would fail with "too many open files" before the cap answers 503."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and max_connections + _SPARE_FDS > soft:
        log.warning(
            "api: max_connections=%d and the open-file limit is %d: lower "
            "api.max_connections or raise the limit (ulimit -n %d)",
            max_connections,
            soft,
            max_connections + _SPARE_FDS,
        )


class _NoSignals(uvicorn.Server):
    """Signals are the host's (``up``, or an app whose loop the runtime adopted in the
    main thread): uvicorn taking SIGINT there would stop only the API, then re-raise."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LoopServer:
    """One uvicorn server for ``app`` on ``loop``; :meth:`start` then :meth:`stop`, once.

    ``drain(grace)``, if given, is awaited when stopping, once uvicorn was told to
    exit: it ends the requests in flight (see :meth:`RequestTracker.drain`).
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: ApiConfig,
        loop: RuntimeLoop,
        drain: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        self.asgi = app
        self.drain = drain
        self.settings = settings
        self.loop = loop
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._serving: Future[None] | None = None
        self.host = settings.host
        self.port = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        s = self.settings
        sock = bind(s.host, s.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.asgi,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_keep_alive=s.keep_alive,
            http=bounded_protocol(s.header_timeout, s.max_connections),
            root_path=s.root_path,
            proxy_headers=bool(s.forwarded_allow_ips),
            forwarded_allow_ips=s.forwarded_allow_ips or None,
        )
        _check_file_limit(s.max_connections)
        server = _NoSignals(config)
        self._sock, self._server = sock, server
        try:
            self._serving = self.loop.submit(server.serve(sockets=[sock]))
            self.loop.run(self._started(server), timeout=START_TIMEOUT)
        except BaseException:
            self.stop(1.0)
            raise
        log.info("api: serving on %s", self.url)

    async def _started(self, server: uvicorn.Server) -> None:
        serving = self._serving
        assert serving is not None
        while not server.started:
            if serving.done():
                with contextlib.suppress(SystemExit):  # uvicorn's "startup failed"
                    serving.result()
                raise RuntimeError("uvicorn stopped before it started serving")
            await asyncio.sleep(0.005)

    def alive(self) -> bool:
        serving, server = self._serving, self._server
        return server is not None and server.started and serving is not None and not serving.done()

    def listening(self) -> bool:
        """Its socket is open and listening. Asked of the socket, not by connecting: a
        probe connection would take one of ``api.max_connections`` (turning a client
        away when the cap is near), and the kernel accepts a connect even while the
        loop is stuck, so it would tell no more than this."""
        sock = self._sock
        if sock is None or sock.fileno() == -1:
            return False
        try:
            return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        except OSError:
            return False

    def stop(self, budget: float) -> None:
        """Stop within ``budget`` seconds: drain, then end uvicorn (forcing it if late)."""
        server, serving = self._server, self._serving
        try:
            if server is not None and serving is not None and not serving.done():
                self.loop.run(self._shutdown(server, serving, budget), timeout=budget + 1.0)
        finally:
            if self._sock is not None:
                self._sock.close()
            self._server = self._serving = None

    async def _shutdown(self, server: uvicorn.Server, serving: Future[None], budget: float) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        grace = max(0.0, min(self.settings.stop_timeout, budget * 0.6))
        # uvicorn's own limit is only a backstop: the tracker ends requests first.
        server.config.timeout_graceful_shutdown = max(1, math.ceil(budget - grace))
        server.should_exit = True
        if self.drain is not None:
            await self.drain(grace)
        waiting = asyncio.wrap_future(serving)
        left = max(0.05, budget - (loop.time() - began))
        try:
            await asyncio.wait_for(asyncio.shield(waiting), left)
        except TimeoutError:
            log.warning("api: uvicorn did not stop within %.2fs; forcing it", budget)
            server.force_exit = True
            waiting.cancel()
        except Exception as exc:  # uvicorn's own failure; the server is down either way
            log.warning("api: uvicorn stopped with an error: %s", exc)
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
