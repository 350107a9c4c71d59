"""The outermost middleware: the requests being answered, their metrics, and a clean stop.

Stopping lets the requests in flight finish for a grace period; those still
running then are cancelled once (plain asyncio cancellation, so their
transaction rolls back normally) and answered ``503 shutting_down`` if they had
not started their response. Nothing reaches uvicorn's own error path, which
would answer a bare 500 and log a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time

from jaseci_like_services.api.error_responses import error_json
from jaseci_like_services.api.metrics import UNMATCHED, HttpMetrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

SHUTTING_DOWN = (
    "the server is stopping and did not finish this request; if it was a write, "
    "check whether it was applied before retrying"
)


class RequestTracker:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.draining = False
        self._running: set[asyncio.Task[object]] = set()
        #: Requests this middleware cancelled while stopping.
        self._stopped: set[asyncio.Task[object]] = set()
        self._idle: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
            await send(message)

        if self.draining:
            await error_json(503, "shutting_down", SHUTTING_DOWN, {"Connection": "close"})(
                scope, receive, tracked
            )
            self._observe(scope, status, began)
            return
        task: asyncio.Task[object] | None = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if task not in self._stopped:
                raise
            task.uncancel()
            if not started:
                await error_json(503, "shutting_down", SHUTTING_DOWN, {"Connection": "close"})(
                    scope, receive, tracked
                )
        except Exception:
            # Starlette's ServerErrorMiddleware answers (our handler logged why), then
            # raises again; the answer is out, so this ends here.
            if not started:
                log.exception("%s %s: no answer was sent", scope["method"], scope["path"])
                await error_json(500, "internal_error", "the server failed to answer")(
                    scope, receive, tracked
                )
        finally:
            self._running.discard(task)
            self._stopped.discard(task)
            self.metrics.in_flight.dec()
            if self._idle is not None and not self._running:
                self._idle.set()
            self._observe(scope, status, began)

    def _observe(self, scope: Scope, status: int, began: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        self.metrics.observe(scope["method"], template, status, time.perf_counter() - began)

    async def drain(self, grace: float) -> int:
        """Refuse new requests; wait up to ``grace`` seconds for those running, then
        cancel the rest. Returns how many were cancelled."""
        self.draining = True
        if not self._running:
            return 0
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            late = list(self._running)
            log.warning("stopping: %d request(s) still running after %.2fs", len(late), grace)
            for task in late:
                self._stopped.add(task)
                task.cancel()
            return len(late)
        return 0
