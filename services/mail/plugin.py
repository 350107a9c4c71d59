"""Registers the mail service."""

from __future__ import annotations

from jaseci_like_services.mail.service import MailService

from jaseci_like import CommonService, hookimpl


@hookimpl
def jaseci_like_services() -> list[type[CommonService]]:
    return [MailService]
