"""SmtpClient: one smtplib connection, logged in, reopened when the server drops it."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import TypeVar

from jaseci_like_services.mail.config import MailConfig
from jaseci_like_services.mail.errors import (
    MailAuthError,
    MailConnectionError,
    MailNotRunning,
    MailSendError,
)

from jaseci_like.config.secrets import MASK

log = logging.getLogger(__name__)

T = TypeVar("T")

#: RFC 5321: the server is closing the channel.
_CLOSING = 421


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` means the server did not answer in time (smtplib reports a read
    that timed out as SMTPServerDisconnected, with the TimeoutError as its context)."""
    if isinstance(exc, TimeoutError):
        return True
    return isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
        exc.__context__, TimeoutError
    )


def _dropped(exc: BaseException) -> bool:
    """Whether ``exc`` means the server closed the connection (so a new one may work).
    A server that stopped answering did not: reconnecting would wait as long again."""
    if _timed_out(exc):
        return False
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == _CLOSING


def _left(deadline: float) -> float:
    """Seconds until ``deadline``; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


class _Smtp(smtplib.SMTP):
    """``smtplib.SMTP`` whose connection (TCP, then the server's greeting) ends by
    ``deadline``: the configured timeout bounds the whole connect, not each step."""

    def __init__(self, host: str, port: int, *, timeout: float, deadline: float) -> None:
        self._deadline = deadline
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), _left(self._deadline), self.source_address)
        sock.settimeout(_left(self._deadline))  # the greeting is read next
        return sock


class _SmtpSsl(smtplib.SMTP_SSL):
    """``smtplib.SMTP_SSL`` bounded as :class:`_Smtp` (TCP, TLS handshake, greeting)."""

    def __init__(
        self, host: str, port: int, *, timeout: float, deadline: float, context: ssl.SSLContext
    ) -> None:
        self._deadline = deadline
        self._server_name = host  # the certificate must name it
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), _left(self._deadline), self.source_address)
        sock.settimeout(_left(self._deadline))  # the TLS handshake, then the greeting
        return self.context.wrap_socket(sock, server_hostname=self._server_name)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{exc.smtp_code} {reply}"


class SmtpClient:
    """The mail service's ``app``: an SMTP connection to the configured server.

    ``connect`` opens it (TLS as configured) and logs in; ``send`` and ``noop`` reopen
    it once when the server dropped it since the last command, then retry. smtplib
    connections are not thread-safe, so one lock serializes every command.

    A send retried after a drop is at-least-once: if the server dropped the
    connection after taking the message but before answering, it is sent twice.
    """

    def __init__(self, config: MailConfig) -> None:
        self.config = config
        #: How many times a dropped connection was reopened.
        self.reconnects = 0
        self._lock = threading.Lock()
        self._smtp: smtplib.SMTP | None = None
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    # -- public ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while a connection is open (the server may still have dropped it)."""
        return self._smtp is not None

    def connect(self) -> None:
        """Open and log in now, so a wrong host, certificate or password fails at once."""
        with self._lock:
            self._connection()

    def send(self, message: EmailMessage) -> dict[str, tuple[int, str]]:
        """Send ``message``; returns the recipients the server refused (others got it)."""
        with self._lock:
            try:
                refused = self._retrying(lambda smtp: smtp.send_message(message))
            except smtplib.SMTPRecipientsRefused as exc:
                raise MailSendError(
                    f"SMTP server {self.config.endpoint} refused every recipient: "
                    + self._scrub(_refusals(exc.recipients)),
                    {k: (code, _text(reply)) for k, (code, reply) in exc.recipients.items()},
                ) from None
            except smtplib.SMTPResponseException as exc:
                raise MailSendError(
                    f"SMTP server {self.config.endpoint} refused the message: "
                    + self._scrub(_reply(exc))
                ) from None
            except smtplib.SMTPException as exc:  # e.g. SMTPUTF8 needed but not offered
                raise MailSendError(
                    f"cannot send through SMTP server {self.config.endpoint}: "
                    f"{type(exc).__name__}: {self._scrub(str(exc))}"
                ) from None
            return {k: (code, _text(reply)) for k, (code, reply) in refused.items()}

    def noop(self) -> int:
        """NOOP: the server's reply code (250 when it is alive)."""
        with self._lock:
            return self._retrying(lambda smtp: smtp.noop()[0])

    def close(self) -> None:
        """QUIT and close; the client cannot be used again."""
        with self._lock:
            self._closed = True
            smtp, self._smtp = self._smtp, None
            if smtp is None:
                return
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError) as exc:
                # The server went first; nothing is left to say goodbye to.
                log.debug("mail: QUIT to %s failed (%s); socket closed", self.config.endpoint, exc)
                smtp.close()

    # -- connection ------------------------------------------------------------------
    def _retrying(self, command: Callable[[smtplib.SMTP], T]) -> T:
        """Run ``command``; if the server dropped the connection, reopen once and rerun."""
        smtp = self._connection()
        try:
            return self._guarded(smtp, command)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as exc:
            if not _dropped(exc):
                raise
            log.info(
                "mail: %s dropped the connection (%s); reconnecting once",
                self.config.endpoint,
                self._scrub(str(exc)),
            )
            self._discard()
        smtp = self._connection()
        self.reconnects += 1
        try:
            return self._guarded(smtp, command)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as exc:
            if not _dropped(exc):
                raise
            self._discard()
            raise MailConnectionError(
                f"SMTP server {self.config.endpoint} dropped the connection again right "
                f"after a reconnect: {self._scrub(str(exc))}"
            ) from None

    def _guarded(self, smtp: smtplib.SMTP, command: Callable[[smtplib.SMTP], T]) -> T:
        """Run ``command``; a socket error (timeout, reset) discards the connection."""
        try:
            return command(smtp)
        except smtplib.SMTPServerDisconnected as exc:
            if not _timed_out(exc):
                raise
            self._discard()
            raise MailConnectionError(
                f"SMTP server {self.config.endpoint} did not answer within "
                f"{self.config.timeout:g} s (mail.timeout)"
            ) from None
        except smtplib.SMTPException:
            raise
        except OSError as exc:
            self._discard()
            raise MailConnectionError(
                f"SMTP server {self.config.endpoint} stopped answering: {type(exc).__name__}: "
                f"{self._scrub(str(exc))}"
            ) from exc

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _connection(self) -> smtplib.SMTP:
        if self._closed:
            raise MailNotRunning("the mail client was closed (the mail service stopped)")
        if self._smtp is None:
            self._smtp = self._open()
        return self._smtp

    def _open(self) -> smtplib.SMTP:
        """Connect, set up TLS and log in, all within ``mail.timeout`` seconds."""
        c = self.config
        port = c.effective_port
        deadline = time.monotonic() + c.timeout
        try:
            if c.security == "ssl":
                smtp: smtplib.SMTP = _SmtpSsl(
                    c.host, port, timeout=c.timeout, deadline=deadline, context=self._tls_context()
                )
            else:
                smtp = _Smtp(c.host, port, timeout=c.timeout, deadline=deadline)
        except (smtplib.SMTPException, OSError) as exc:
            if isinstance(exc, smtplib.SMTPServerDisconnected) and _timed_out(exc):
                raise MailConnectionError(
                    f"SMTP server {c.endpoint} accepted the connection but sent no greeting "
                    f"within {c.timeout:g} s (mail.timeout); check that mail.host and "
                    "mail.port name an SMTP server and mail.security is what it speaks"
                ) from None
            if _timed_out(exc):
                raise MailConnectionError(
                    f"cannot connect to SMTP server {c.endpoint} within {c.timeout:g} s "
                    "(mail.timeout); check mail.host, mail.port and mail.security"
                ) from None
            raise MailConnectionError(
                f"cannot connect to SMTP server {c.endpoint}: {type(exc).__name__}: "
                f"{self._scrub(str(exc))}; check mail.host, mail.port and mail.security"
            ) from exc
        try:
            self._hello(smtp, deadline)
            if c.username is not None:
                self._login(smtp, c.username, deadline)
            if smtp.sock is not None:
                smtp.sock.settimeout(c.timeout)  # from now on, per command
        except BaseException:
            smtp.close()
            raise
        log.debug("mail: connected to %s", c.endpoint)
        return smtp

    def _late(self, step: str) -> MailConnectionError:
        c = self.config
        return MailConnectionError(
            f"SMTP server {c.endpoint} did not finish {step} within {c.timeout:g} s "
            "(mail.timeout); the server is too slow or not answering"
        )

    def _hello(self, smtp: smtplib.SMTP, deadline: float) -> None:
        c = self.config
        try:
            _bound(smtp, deadline)
            smtp.ehlo()
            if c.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailConnectionError(
                        f"SMTP server {c.endpoint} does not offer STARTTLS; "
                        "use mail.security: ssl (or plain, on a trusted network only)"
                    )
                _bound(smtp, deadline)
                smtp.starttls(context=self._tls_context())
                _bound(smtp, deadline)
                smtp.ehlo()
        except (smtplib.SMTPException, OSError) as exc:
            if _timed_out(exc):
                raise self._late("setting up the session (EHLO, STARTTLS)") from None
            raise MailConnectionError(
                f"cannot set up the session with SMTP server {c.endpoint}: "
                f"{type(exc).__name__}: {self._scrub(str(exc))}"
            ) from exc

    def _login(self, smtp: smtplib.SMTP, username: str, deadline: float) -> None:
        c = self.config
        if c.security == "plain":
            log.warning(
                "mail: logging in to %s over an unencrypted connection; "
                "use mail.security: starttls or ssl",
                c.endpoint,
            )
        secret = c.password.get_secret_value() if c.password is not None else ""
        try:
            _bound(smtp, deadline)
            smtp.login(username, secret)
        except smtplib.SMTPAuthenticationError as exc:
            raise MailAuthError(
                f"SMTP server {c.endpoint} refused the login of user {username!r}: "
                f"{self._scrub(_reply(exc))}; check mail.username and mail.password"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise MailAuthError(
                f"SMTP server {c.endpoint} offers no login (AUTH) on this connection, "
                "but mail.username is set; servers often offer it only over TLS "
                "(mail.security: starttls or ssl)"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            if _timed_out(exc):
                raise self._late(f"the login of user {username!r}") from None
            raise MailAuthError(
                f"login of user {username!r} at SMTP server {c.endpoint} failed: "
                f"{type(exc).__name__}: {self._scrub(str(exc))}"
            ) from None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is not None:
            return self._tls
        c = self.config
        try:
            context = ssl.create_default_context(cafile=c.ca_file)
        except OSError as exc:
            raise MailConnectionError(
                f"cannot load the CA certificates of mail.ca_file {c.ca_file!r}: {exc}"
            ) from exc
        if not c.verify:
            log.warning("mail: TLS certificate checking is off (mail.verify: false)")
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._tls = context
        return context

    def _scrub(self, text: str) -> str:
        """``text`` with the password masked, should a server ever echo it."""
        password = self.config.password
        secret = password.get_secret_value() if password is not None else ""
        return text.replace(secret, MASK) if secret else text


def _bound(smtp: smtplib.SMTP, deadline: float) -> None:
    """The next step of the connect waits at most until ``deadline``."""
    if smtp.sock is not None:
        smtp.sock.settimeout(_left(deadline))


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _refusals(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in recipients.items())
