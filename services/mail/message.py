"""Composing one outgoing message: headers and the text/html alternatives."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from jaseci_like_services.mail.templates import Rendered


def compose(sender: Address, recipients: list[Address], parts: Rendered) -> EmailMessage:
    """A message from ``sender`` to ``recipients``; multipart/alternative with an html part.

    The Message-ID uses the sender's domain (``make_msgid`` would otherwise ask DNS
    for this host's name on every message).
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipients
    message["Subject"] = parts.subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.domain.strip("[]") or "localhost")
    message.set_content(parts.text)
    if parts.html is not None:
        message.add_alternative(parts.html, subtype="html")
    return message
