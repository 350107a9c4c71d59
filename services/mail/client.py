"""SmtpClient: one smtplib connection, logged in, reopened when the server drops it."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
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


def _dropped(exc: BaseException) -> bool:
    """Whether ``exc`` means the server closed the connection (so a new one may work)."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == _CLOSING


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
        c = self.config
        port = c.effective_port
        try:
            if c.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    c.host, port, timeout=c.timeout, context=self._tls_context()
                )
            else:
                smtp = smtplib.SMTP(c.host, port, timeout=c.timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailConnectionError(
                f"cannot connect to SMTP server {c.endpoint}: {type(exc).__name__}: "
                f"{self._scrub(str(exc))}; check mail.host, mail.port and mail.security"
            ) from exc
        try:
            self._hello(smtp)
            if c.username is not None:
                self._login(smtp, c.username)
        except BaseException:
            smtp.close()
            raise
        log.debug("mail: connected to %s", c.endpoint)
        return smtp

    def _hello(self, smtp: smtplib.SMTP) -> None:
        c = self.config
        try:
            smtp.ehlo()
            if c.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailConnectionError(
                        f"SMTP server {c.endpoint} does not offer STARTTLS; "
                        "use mail.security: ssl (or plain, on a trusted network only)"
                    )
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
        except (smtplib.SMTPException, OSError) as exc:
            raise MailConnectionError(
                f"cannot set up the session with SMTP server {c.endpoint}: "
                f"{type(exc).__name__}: {self._scrub(str(exc))}"
            ) from exc

    def _login(self, smtp: smtplib.SMTP, username: str) -> None:
        c = self.config
        if c.security == "plain":
            log.warning(
                "mail: logging in to %s over an unencrypted connection; "
                "use mail.security: starttls or ssl",
                c.endpoint,
            )
        secret = c.password.get_secret_value() if c.password is not None else ""
        try:
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


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _refusals(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in recipients.items())
