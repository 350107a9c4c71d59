"""A real SMTP server for the tests: aiosmtpd on a free port of 127.0.0.1.

``MailServer`` runs aiosmtpd's threaded ``Controller`` with optional AUTH (one
username and password), STARTTLS (required before AUTH and MAIL) or implicit TLS,
using a certificate the test made (``trustme``). It records every message, the
NOOP/QUIT commands it answers and the sessions it served, and tracks open
connections, so a test can wait for a message, drop every connection from the
server side, or restart the server on the same port, without sleeping.

No pytest here: the fixtures live in ``tests/test_mail.py``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal, Self

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers import LOOPBACK, free_port

__all__ = ["REFUSED_LOCAL_PART", "MailServer", "Received", "Tls"]

Tls = Literal["none", "starttls", "ssl"]

#: Recipients with this local part (``nobody@...``) are refused with 550.
REFUSED_LOCAL_PART = "nobody"


@dataclass(frozen=True)
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    #: The DATA exactly as received (CRLF line ends).
    raw: bytes
    #: The login the session authenticated as, or None.
    login: str | None
    #: Whether the session was encrypted (STARTTLS or implicit TLS) when DATA came.
    tls: bool


class _Recorder:
    """aiosmtpd handler: keeps messages, refuses ``nobody@`` recipients, counts NOOP/QUIT.

    One Event per message index, so a test waits for exactly the message it expects.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._arrived: dict[int, threading.Event] = {}
        self.commands: Counter[str] = Counter()
        self._greeted: list[SMTP] = []
        self.quit = threading.Event()

    def _event(self, index: int) -> threading.Event:
        with self._lock:
            return self._arrived.setdefault(index, threading.Event())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        # As a mailbox stores it: line ends as "\n", not the wire's CRLF.
        parsed = message_from_bytes(content.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=content,
            login=login,
            tls=server.transport is not None
            and server.transport.get_extra_info("ssl_object") is not None,
        )
        with self._lock:
            index = len(self._messages)
            self._messages.append(received)
        self._event(index).set()
        return "250 Message accepted for delivery"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith(REFUSED_LOCAL_PART + "@"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when no hook is set
        with self._lock:
            if all(known is not server for known in self._greeted):
                self._greeted.append(server)
        return responses

    @property
    def sessions(self) -> int:
        """Sessions that said EHLO (STARTTLS's second EHLO is the same session)."""
        with self._lock:
            return len(self._greeted)

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        self.commands["NOOP"] += 1
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands["QUIT"] += 1
        self.quit.set()
        return "221 Bye"

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def wait(self, index: int, timeout: float) -> Received:
        if not self._event(index).wait(timeout):
            raise TimeoutError(f"message #{index} did not arrive within {timeout}s")
        with self._lock:
            return self._messages[index]


class _Connections:
    """The server's open sessions; lets a test wait until every one is gone.

    A session counts while its socket is open. aiosmtpd does not always report the
    end of a session whose TLS peer hung up at once (a client that rejected the
    certificate after a TLS 1.3 handshake): its socket is closed, but
    ``connection_lost`` never comes. So the socket decides, and ``poke`` re-checks.
    """

    def __init__(self) -> None:
        self._live: set[_TrackedSMTP] = set()
        self._changed = threading.Condition()

    def add(self, session: _TrackedSMTP) -> None:
        with self._changed:
            self._live.add(session)
            self._changed.notify_all()

    def discard(self, session: _TrackedSMTP) -> None:
        with self._changed:
            self._live.discard(session)
            self._changed.notify_all()

    def poke(self) -> None:
        """Wake waiters to look at the sockets again (one may have closed silently)."""
        with self._changed:
            self._changed.notify_all()

    def _open(self) -> list[_TrackedSMTP]:
        return [session for session in self._live if session.socket_open()]

    def snapshot(self) -> list[_TrackedSMTP]:
        with self._changed:
            return self._open()

    def wait_for_count(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._open()) == count, timeout)


class _TrackedSMTP(SMTP):
    def __init__(self, handler: Any, connections: _Connections, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._connections = connections

    def socket_open(self) -> bool:
        # After STARTTLS, `transport` is the TLS layer; the socket's is the original.
        wire = self._original_transport or self.transport
        return wire is not None and not wire.is_closing()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # called again after STARTTLS: a set
        self._connections.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._connections.discard(self)


class _Controller(Controller):
    def __init__(self, connections: _Connections, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections = connections

    def factory(self) -> SMTP:
        return _TrackedSMTP(self.handler, self._connections, **self.SMTP_kwargs)


class _Authenticator:
    """Accepts one login and password; remembers how many attempts failed."""

    def __init__(self, login: str, password: str) -> None:
        self.failures = 0
        self.accept(login, password)

    def accept(self, login: str, password: str) -> None:
        """From now on, accept only this login and password (a password change)."""
        self._expected = LoginPassword(login.encode(), password.encode())

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and data == self._expected:
            return AuthResult(success=True, auth_data=data)
        self.failures += 1
        return AuthResult(success=False, handled=False)


class MailServer:
    """aiosmtpd on 127.0.0.1:<free port>; ``start``/``stop``/``restart`` keep the port."""

    def __init__(
        self,
        *,
        tls: Tls = "none",
        cert: trustme.LeafCert | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if tls != "none" and cert is None:
            raise ValueError("a TLS server needs a certificate")
        self.tls: Tls = tls
        self.host = LOOPBACK
        self.port = free_port()
        self.handler = _Recorder()
        self.connections = _Connections()
        self.authenticator = _Authenticator(*credentials) if credentials else None
        self._context: ssl.SSLContext | None = None
        if cert is not None:
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(self._context)
        self._controller: _Controller | None = None

    def _new_controller(self) -> _Controller:
        smtp: dict[str, Any] = {
            "server_hostname": "localhost",  # aiosmtpd would ask DNS per connection
            "ready_timeout": 10.0,
        }
        if self.authenticator is not None:
            smtp.update(authenticator=self.authenticator, auth_required=True)
        if self.tls == "starttls":
            smtp.update(tls_context=self._context, require_starttls=True)
        elif self.tls == "ssl":
            # aiosmtpd counts only STARTTLS as TLS for AUTH; this session is TLS throughout.
            smtp.update(ssl_context=self._context, auth_require_tls=False)
        return _Controller(
            self.connections, self.handler, hostname=self.host, port=self.port, **smtp
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        if self._controller is None:
            controller = self._new_controller()
            controller.start()
            self._controller = controller
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Drop every connection, then stop listening (the port stays reserved by no one)."""
        if self._controller is None:
            return
        self.drop_connections(timeout)
        self._controller.stop()
        self._controller = None

    def restart(self) -> Self:
        """The server gone and back on the same port: every old connection is dead."""
        self.stop()
        return self.start()

    # -- observation -------------------------------------------------------------------
    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def sessions(self) -> int:
        """How many client sessions began (said EHLO) since the server was made.

        The controller's own readiness probe connects without a command, so it
        does not count.
        """
        return self.handler.sessions

    def wait_for_message(self, index: int = 0, timeout: float = 10.0) -> Received:
        """The ``index``-th message received, waiting for it at most ``timeout`` seconds."""
        return self.handler.wait(index, timeout)

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until exactly ``count`` connections are open."""
        return self.connections.wait_for_count(count, timeout)

    def drop_connections(self, timeout: float = 10.0) -> int:
        """Abort every open connection from the server side; returns how many there were.

        Abort (a reset), not close: a TLS close waits for the client's close_notify,
        which an idle client never sends.
        """
        controller = self._controller
        live = self.connections.snapshot()
        if controller is None or not live:
            return 0

        def abort() -> None:
            for session in live:
                if isinstance(session.transport, asyncio.Transport):
                    session.transport.abort()
            self.connections.poke()

        controller.loop.call_soon_threadsafe(abort)
        if not self.connections.wait_for_count(0, timeout):
            raise TimeoutError(f"connections still open {timeout}s after the server dropped them")
        return len(live)
