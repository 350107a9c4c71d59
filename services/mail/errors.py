"""Typed errors of the mail service; each has a stable ``code``.

None of them carries the SMTP password: messages name the server, the user and
what the server answered, never the secret.
"""

from __future__ import annotations

from jaseci_like import JaseciLikeError


class MailError(JaseciLikeError):
    """Base of every error the mail service raises on purpose."""

    code = "mail_error"


class MailNotRunning(MailError):
    """``send`` or ``health`` on a mail service that is not RUNNING."""

    code = "mail_not_running"


class TemplateNotFound(MailError, LookupError):
    """``send`` named a template that is not configured under ``mail.templates``."""

    code = "mail_template_not_found"


class TemplateValuesError(MailError, ValueError):
    """The values given to ``send`` are not exactly the template's placeholders."""

    code = "mail_template_values"


class InvalidAddress(MailError, ValueError):
    """A sender or recipient that is not a single valid e-mail address."""

    code = "mail_invalid_address"


class HeaderInjection(MailError, ValueError):
    """A value bound for a header (subject, address) holds a line break: refused."""

    code = "mail_header_injection"


class MailConnectionError(MailError):
    """The SMTP server could not be reached, or TLS could not be set up."""

    code = "mail_connection_failed"


class MailAuthError(MailError):
    """The SMTP server refused the configured username and password."""

    code = "mail_auth_failed"


class MailSendError(MailError):
    """The SMTP server refused the message, its sender or its recipients.

    ``refused`` maps each refused recipient to the server's (code, reply); when some
    recipients were accepted, ``message_id`` is the id of the message they got.
    """

    code = "mail_send_failed"

    def __init__(
        self,
        message: str,
        refused: dict[str, tuple[int, str]] | None = None,
        message_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.refused = dict(refused or {})
        self.message_id = message_id
