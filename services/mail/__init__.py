"""The mail service: templated mail over SMTP (plain, STARTTLS or SSL) with login."""

from jaseci_like_services.mail.client import SmtpClient
from jaseci_like_services.mail.config import MailConfig
from jaseci_like_services.mail.errors import (
    HeaderInjection,
    InvalidAddress,
    MailAuthError,
    MailConnectionError,
    MailError,
    MailNotRunning,
    MailSendError,
    TemplateNotFound,
    TemplateValuesError,
)
from jaseci_like_services.mail.service import MailService
from jaseci_like_services.mail.templates import MailTemplate, Rendered

__all__ = [
    "HeaderInjection",
    "InvalidAddress",
    "MailAuthError",
    "MailConfig",
    "MailConnectionError",
    "MailError",
    "MailNotRunning",
    "MailSendError",
    "MailService",
    "MailTemplate",
    "Rendered",
    "SmtpClient",
    "TemplateNotFound",
    "TemplateValuesError",
]
