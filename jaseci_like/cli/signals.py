"""Waiting in the main thread for SIGINT or SIGTERM, woken whichever thread gets it.

Not ``threading.Event().wait()``: Linux delivers a signal sent to the process to any
thread that does not block it, and when that is not the main thread, a main thread
blocked on a lock is never interrupted, so the Python handler (which only ever runs
in the main thread) waits for a wake-up that never comes: ``up`` then ignored a
SIGTERM under load. The C-level handler always writes the signal's number to the
wakeup file descriptor (:func:`signal.set_wakeup_fd`), whichever thread it landed
on; the main thread waits on that socket, so it wakes for every signal.
"""

from __future__ import annotations

import select
import signal
import socket
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While entered: SIGINT and SIGTERM are caught (from the start, so one sent while
    services start is kept) and :meth:`wait` returns once one has come."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self._signals = signals
        self._received = threading.Event()
        self._receive, self._send = socket.socketpair()
        self._send.setblocking(False)
        self._previous: list[signal._HANDLER] = []
        self._previous_fd = -1

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._received.set()

    def __enter__(self) -> StopSignals:
        self._previous = [signal.signal(s, self._on_signal) for s in self._signals]
        self._previous_fd = signal.set_wakeup_fd(self._send.fileno(), warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for sig, previous in zip(self._signals, self._previous, strict=True):
            signal.signal(sig, previous)
        self._receive.close()
        self._send.close()

    @property
    def received(self) -> bool:
        return self._received.is_set()

    def wait(self) -> None:
        """Block until a stop signal has been received (at once if one already was)."""
        while not self._received.is_set():
            # Readable once any signal's number is written; the Python handler has
            # run by the time select returns to us (it runs between bytecodes).
            select.select([self._receive], [], [])
            self._receive.recv(4096)
