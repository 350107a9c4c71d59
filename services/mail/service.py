"""MailService: templated mail over SMTP, NOOP as its health check."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from jaseci_like_configs import defaults
from jaseci_like_services.mail.addresses import parse_address, parse_recipients
from jaseci_like_services.mail.client import SmtpClient
from jaseci_like_services.mail.config import MailConfig
from jaseci_like_services.mail.errors import MailNotRunning, MailSendError, TemplateNotFound
from jaseci_like_services.mail.message import compose

from jaseci_like import CommonService, MemoryHook

log = logging.getLogger(__name__)

_OK = 250


class MailService(CommonService):
    """``app`` is an :class:`SmtpClient`, connected and logged in at start.

    Wrong credentials fail the start (FAILED, the reason in ``error``, no password in
    it). Templates come from ``mail.templates`` and are checked with the config.

    >>> service = MailService()  # disabled by default: nothing to connect to
    >>> service.start().is_running()
    False
    """

    name = "mail"
    config_schema = MailConfig
    #: The typed config (``config`` is the same as a mapping); None while refused.
    settings: MailConfig | None
    default_config: ClassVar[dict[str, Any]] = defaults("mail")
    start_blocks = True

    @property
    def mail_config(self) -> MailConfig:
        """The validated config; :class:`MailNotRunning` when it was refused."""
        settings = self.settings
        if not isinstance(settings, MailConfig):
            raise MailNotRunning(f"the mail service has no valid configuration: {self.error}")
        return settings

    def run(self, hook: MemoryHook | None = None) -> None:
        client = SmtpClient(self.mail_config)
        client.connect()
        self.app = client

    def teardown(self) -> None:
        client: SmtpClient = self.app
        client.close()

    def health(self) -> bool:
        client = self.app
        if not isinstance(client, SmtpClient) or not self.is_running():
            return False
        return client.noop() == _OK

    def health_timeout(self) -> float:
        """``mail.timeout``: NOOP is one command, and each waits at most that long."""
        settings = self.settings
        return settings.timeout if isinstance(settings, MailConfig) else super().health_timeout()

    def send(
        self, to: str | list[str] | tuple[str, ...], template: str, /, **values: object
    ) -> str:
        """Render ``template`` with ``values``, send it to ``to``; returns the Message-ID.

        The values must be exactly the template's placeholders (``$name``); values
        in the html body are HTML-escaped. Raises a :class:`MailError` subclass:
        :class:`MailNotRunning`, :class:`TemplateNotFound`, :class:`TemplateValuesError`,
        :class:`InvalidAddress`, :class:`HeaderInjection`, :class:`MailConnectionError`,
        :class:`MailAuthError` or :class:`MailSendError`.
        """
        client = self.app
        if not isinstance(client, SmtpClient) or not self.is_running():
            why = "disabled (mail.enabled: false)" if not self.enabled else self.state.name
            raise MailNotRunning(f"the mail service is not running ({why}); nothing was sent")
        config = client.config
        found = config.templates.get(template)
        if found is None:
            known = ", ".join(sorted(config.templates)) or "none"
            raise TemplateNotFound(
                f"no mail template {template!r} (configured: {known}); add it under mail.templates"
            )
        recipients = parse_recipients(to)
        message = compose(
            parse_address(config.sender, "mail.sender"),
            recipients,
            found.render(values, template),
        )
        message_id = str(message["Message-ID"])
        refused = client.send(message)
        if refused:
            raise MailSendError(
                f"mail {message_id} (template {template!r}) was refused for "
                f"{len(refused)} of {len(recipients)} recipient(s): "
                + "; ".join(f"{rcpt}: {code} {reply}" for rcpt, (code, reply) in refused.items()),
                refused,
                message_id,
            )
        log.debug(
            "mail: sent %s (template %r) to %d recipient(s)", message_id, template, len(recipients)
        )
        return message_id
