"""Writers of one process take turns, first come first served: :func:`serialize_writes`.

SQLite lets one writer at a time hold a file's write lock; the others retry in
its busy handler, which sleeps up to 100 ms between tries and serves nobody in
order. Under a few hundred concurrent writers some lose every try for the whole
busy timeout and fail, while the lock sits idle during the sleeps. A queue in
front, in the process, hands the lock on at once and in arrival order; the
writers of other processes still meet at the file's lock (the busy timeout).

The queue holds no connection while waiting: a writer checks one out of the
pool only when its turn comes.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.repository.errors import WriteQueueStalled


class _Turns:
    """The FIFO queue of one engine's writers on one event loop."""

    def __init__(self, stall: float) -> None:
        self.stall = stall
        self._busy = False
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        #: Turns handed on so far: a waiter that sees it unchanged for ``stall``
        #: seconds knows one writer kept its turn all that time.
        self._handed = 0

    async def acquire(self) -> None:
        if not self._busy and not self._waiting:
            self._busy = True
            return
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        self._waiting.append(turn)
        # The turn is awaited directly (a hand-over wakes the waiter in one loop
        # iteration); a timer checks every ``stall`` seconds that turns still move.
        watch: list[asyncio.TimerHandle] = []
        watch.append(loop.call_later(self.stall, self._check, turn, self._handed, watch))
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self.release()  # handed the turn while leaving: pass it on
            elif turn in self._waiting:
                self._waiting.remove(turn)
            raise
        finally:
            for timer in watch:
                timer.cancel()

    def _check(
        self, turn: asyncio.Future[None], seen: int, watch: list[asyncio.TimerHandle]
    ) -> None:
        """Fail ``turn`` if no turn was handed on since ``seen``; else look again later
        (``watch`` holds the timer, for the waiter to cancel)."""
        if turn.done():
            return
        if self._handed != seen:
            loop = asyncio.get_running_loop()
            watch[:] = [loop.call_later(self.stall, self._check, turn, self._handed, watch)]
            return
        self._waiting.remove(turn)
        turn.set_exception(
            WriteQueueStalled(
                f"waited {self.stall:g}s (the busy timeout) for a turn to write "
                "while another transaction of this process kept writing; retry in a moment"
            )
        )

    def release(self) -> None:
        self._handed += 1
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = False


class _Queue:
    """An engine's queues, one per event loop (a future belongs to one loop)."""

    def __init__(self, stall: float) -> None:
        self.stall = stall
        self.loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = (
            weakref.WeakKeyDictionary()
        )

    def turns(self) -> _Turns:
        loop = asyncio.get_running_loop()
        turns = self.loops.get(loop)
        if turns is None:
            turns = self.loops[loop] = _Turns(self.stall)
        return turns


#: Async engine (its ``sync_engine``) -> the queue of its writers.
_QUEUES: weakref.WeakKeyDictionary[Engine, _Queue] = weakref.WeakKeyDictionary()
#: The queues whose turn the current task holds: a unit of work opened inside
#: another goes straight to the database (as before), instead of waiting for itself.
_HELD: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "jaseci_like_write_turns", default=frozenset()
)


def serialize_writes(engine: AsyncEngine, stall: float) -> None:
    """Make the writing units of work on ``engine`` in this process (``DbOps.write_ops``,
    :func:`write_turn`) take turns in arrival order.

    A writer waits as long as the queue moves; when one writer keeps its turn for
    ``stall`` seconds (use the database's own lock timeout), the waiters fail with
    the transient :class:`WriteQueueStalled`, as the database would have failed them.
    For SQLite: a server database orders its writers by row locks instead.
    """
    _QUEUES[engine.sync_engine] = _Queue(stall)


@asynccontextmanager
async def write_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold this process's turn to write on ``engine`` for the block (no wait at all
    unless :func:`serialize_writes` was called for it)."""
    queue = _QUEUES.get(engine.sync_engine)
    held = _HELD.get()
    if queue is None or id(queue) in held:
        yield
        return
    turns = queue.turns()
    await turns.acquire()
    token = _HELD.set(held | {id(queue)})
    try:
        yield
    finally:
        _HELD.reset(token)
        turns.release()
