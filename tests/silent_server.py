"""A TCP server on loopback that accepts connections and never answers.

The dependency that stalls a runtime is not one that is down (that is refused at
once) but one that accepts and then says nothing: a firewall that swallows
packets, a hung process, a port that belongs to something else. ``SilentServer``
is that, for real, on a free port: it accepts and reads, and never writes.
``SilentServer(smtp=True)`` first speaks enough SMTP for a client to connect (a
greeting, then ``250`` to every command) until :meth:`SilentServer.mute`; from
then on it reads and never answers, on open connections and new ones alike.

No pytest here: fixtures live in the test modules that use it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

from tests.servers import LOOPBACK

__all__ = ["SilentServer"]

_GREETING = b"220 silent.test ESMTP\r\n"


class SilentServer:
    """Listens on ``host``:``port`` until closed; counts the connections it accepted."""

    def __init__(self, *, smtp: bool = False) -> None:
        self.smtp = smtp
        self.host = LOOPBACK
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._muted = threading.Event()
        self._closed = threading.Event()
        self._changed = threading.Condition()
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0

    def __enter__(self) -> Self:
        self._spawn(self._accept, "silent:accept")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def mute(self) -> None:
        """Stop answering anything, from now on."""
        self._muted.set()

    def wait_for_accepted(self, count: int, timeout: float) -> bool:
        """Whether ``count`` connections were accepted (in all) within ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.accepted >= count, timeout)

    def close(self) -> None:
        """Close the listener and every connection; wait for the threads to end."""
        self._closed.set()
        self._listener.close()
        with self._changed:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # the client went first
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in self._threads:
            thread.join(timeout=5.0)

    # -- threads ----------------------------------------------------------------------
    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._changed:
                self._connections.append(conn)
                self.accepted += 1
                self._changed.notify_all()
            self._spawn(self._serve, "silent:conn", conn)

    def _serve(self, conn: socket.socket) -> None:
        """Read until the client or ``close`` ends the connection; answer only while
        speaking SMTP and not muted."""
        answering = self.smtp and not self._muted.is_set()
        try:
            if answering:
                conn.sendall(_GREETING)
            pending = b""
            while chunk := conn.recv(4096):
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if self.smtp and not self._muted.is_set():
                        conn.sendall(_reply(line))
        except OSError:
            return  # reset by the client, or closed by close()


def _reply(line: bytes) -> bytes:
    verb = line.strip().split(b" ", 1)[0].upper()
    if verb == b"QUIT":
        return b"221 bye\r\n"
    if verb in (b"EHLO", b"HELO"):
        return b"250 silent.test\r\n"
    return b"250 OK\r\n"
