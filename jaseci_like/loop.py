"""One event loop shared by every async service of a registry: its own, in a daemon
thread, or the host's running loop, adopted (``async with Runtime(...)``).

Synchronous callers reach it through an anyio blocking portal (:meth:`call`), or
with :meth:`run` for a coroutine object on the hot path.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from jaseci_like.errors import WrongLoopError

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

T = TypeVar("T")
log = logging.getLogger(__name__)


class RuntimeLoop:
    """Starts on first use; :meth:`stop` ends it, and a later use starts it again."""

    def __init__(self, name: str = "jaseci-like-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._portal: BlockingPortal | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        #: What the loop still waited for when it last looked, while stopping.
        self._unfinished: list[str] = []
        #: The host's thread when the loop is the host's (adopted), else None.
        self._host_thread: threading.Thread | None = None

    def _ensure(self) -> tuple[asyncio.AbstractEventLoop, BlockingPortal]:
        loop, portal = self._loop, self._portal
        if loop is not None and portal is not None:
            return loop, portal
        with self._lock:
            if self._host_thread is not None:
                raise WrongLoopError(
                    "the runtime's loop is the host's and has no blocking portal; "
                    "use RuntimeLoop.run / submit"
                )
            if self._loop is None or self._portal is None:
                self._start()
            assert self._loop is not None and self._portal is not None
            return self._loop, self._portal

    def _start(self) -> None:
        import anyio
        from anyio.from_thread import BlockingPortal

        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            async with BlockingPortal() as portal:
                self._done = asyncio.Event()
                self._loop = asyncio.get_running_loop()
                self._portal = portal
                ready.set()
                await self._done.wait()
                await self._drain()

        def main() -> None:
            try:
                anyio.run(serve)
            except BaseException as exc:  # handed to the thread that asked for the loop
                failure.append(exc)
            finally:
                self._loop = self._portal = self._done = None
                ready.set()

        self._thread = threading.Thread(target=main, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise RuntimeError(f"the runtime event loop did not start: {failure[0]!r}")

    async def _drain(self) -> None:
        """Let the work still on the loop end before the loop does: tasks cancelled at
        exit would fail mid-way (an engine's connections half closed) and log tracebacks.

        Work still running when ``stop`` gives up is named by it and finishes here,
        in this daemon thread, after ``stop`` has returned.
        """
        me = asyncio.current_task()
        while True:
            others = [t for t in asyncio.all_tasks() if t is not me]
            self._unfinished = [_task_name(t) for t in others]
            if not others:
                return
            await asyncio.wait(others)

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def adopted(self) -> bool:
        """True while the loop is the host's running loop (no thread of our own)."""
        return self._host_thread is not None

    @property
    def event_loop(self) -> asyncio.AbstractEventLoop | None:
        """The asyncio loop async services run on now (None before the first use)."""
        return self._loop

    def adopt(self) -> None:
        """Run async services on the calling coroutine's loop from now on, until
        :meth:`stop`. :class:`WrongLoopError` if our own loop thread already runs."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop is loop:
                return
            if self._loop is not None:
                raise WrongLoopError(
                    "the runtime's services already run on another event loop "
                    "(started with runtime.start()); stop it before awaiting astart()"
                )
            self._loop, self._host_thread = loop, threading.current_thread()

    def check_loop(self, what: str = "this service's app") -> None:
        """:class:`WrongLoopError` unless called on the loop the services run on."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is self._loop:
            return
        if self.adopted:
            hint = "await it from the host's loop (the one that ran astart)"
        else:
            hint = (
                "from sync code use service.loop.run(coro); to await it directly, start "
                "the runtime with 'async with Runtime(...)' or 'await runtime.astart()' "
                "on this loop"
            )
        raise WrongLoopError(f"{what} belongs to the runtime's event loop, not this one: {hint}")

    def in_loop_thread(self) -> bool:
        current = threading.current_thread()
        return self._thread is current or self._host_thread is current

    def portal(self) -> BlockingPortal:
        """The anyio blocking portal of the loop (starting it if needed)."""
        return self._ensure()[1]

    def call(self, func: Callable[..., Awaitable[T] | T], *args: Any) -> T:
        """Call ``func(*args)`` in the loop thread, awaiting it if it is async."""
        self._refuse_own_thread()
        if self._host_thread is not None:
            return self.run(_awaited(func, *args))
        return self.portal().call(func, *args)  # type: ignore[return-value]

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule a coroutine object on the loop; the caller waits on the future."""
        try:
            self._refuse_own_thread()
        except WrongLoopError:
            coro.close()  # never to run: no "never awaited" warning on top of the error
            raise
        loop = self._loop if self._host_thread is not None else None
        if loop is None:
            loop, _ = self._ensure()
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine object on the loop and return its result (or raise its error)."""
        return self.submit(coro).result(timeout)

    def _refuse_own_thread(self) -> None:
        if self.in_loop_thread():
            raise WrongLoopError(
                "blocking call into the runtime loop from the loop's own thread; "
                "await the coroutine instead (async hosts: await runtime.astart() / "
                "astop(), meta.aget_service(name))"
            )

    def stop(self, timeout: float = 5.0) -> bool:
        """End the loop and join its thread; False if it did not end within ``timeout``."""
        with self._lock:
            if self._host_thread is not None:
                # The host's loop is the host's to end: we only let go of it.
                self._loop = self._host_thread = None
                return True
            loop, done, thread = self._loop, self._done, self._thread
            if loop is None or done is None or thread is None:
                return True
            loop.call_soon_threadsafe(done.set)
            thread.join(timeout)
            if not thread.is_alive():
                return True
        unfinished = ", ".join(self._unfinished) or "the loop's own shutdown"
        log.warning(
            "the runtime event loop did not stop within %.2fs: still running %s; "
            "it goes on in the background until that ends",
            timeout,
            unfinished,
        )
        return False


async def _awaited(func: Callable[..., Awaitable[T] | T], *args: Any) -> T:
    result = func(*args)
    if inspect.isawaitable(result):
        return await result
    return result


def _task_name(task: asyncio.Task[Any]) -> str:
    """What a task runs (``AsyncEngine.dispose``), for a person reading a log line."""
    coro = task.get_coro()
    return str(getattr(coro, "__qualname__", None) or task.get_name())
