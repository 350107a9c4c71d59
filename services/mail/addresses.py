"""E-mail address checks for senders and recipients.

An address is ``user@example.com`` or ``Display Name <user@example.com>``. The
address part must be a dot-atom local part and a domain of hostname labels (or an
IPv4 literal). The domain may hold non-ASCII letters; the local part may not (the
stdlib's headers refuse it). Quoted local parts, comments and groups are refused:
nothing a program should need to send to.

>>> str(parse_address("Ada <ada@example.com>"))
'Ada <ada@example.com>'
"""

from __future__ import annotations

import re
from email.headerregistry import Address

from jaseci_like_services.mail.errors import HeaderInjection, InvalidAddress

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+"
_ALNUM = r"A-Za-z0-9\u0080-\U0010ffff"
_LABEL = rf"[{_ALNUM}](?:[{_ALNUM}\-]{{0,61}}[{_ALNUM}])?"
_IPV4 = r"\[\d{1,3}(?:\.\d{1,3}){3}\]"
_ADDR_SPEC = re.compile(
    rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL}(?:\.{_LABEL})*|{_IPV4})"
)
_NAME_ADDR = re.compile(r"(?P<name>[^<>]*?)\s*<(?P<addr>[^<>]*)>")
# Every character str.splitlines() breaks on, and NUL: none belongs in a header.
_LINE_BREAK = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029\x00]")


def has_line_break(text: str) -> bool:
    """True when ``text`` holds a line break (or NUL) that could start a new header."""
    return _LINE_BREAK.search(text) is not None


def parse_address(value: object, what: str = "address") -> Address:
    """``value`` as one :class:`~email.headerregistry.Address`, or a typed error.

    ``what`` names the value in the message ("recipient", "mail.sender").
    """
    if not isinstance(value, str):
        raise InvalidAddress(f"{what} must be a string, not {type(value).__name__}")
    if has_line_break(value):
        raise HeaderInjection(f"{what} {value!r} contains a line break; refused")
    text = value.strip()
    match = _NAME_ADDR.fullmatch(text)
    name, addr = (match["name"].strip(), match["addr"].strip()) if match else ("", text)
    if name.startswith('"') and name.endswith('"') and len(name) >= 2:
        name = name[1:-1]
    spec = _ADDR_SPEC.fullmatch(addr)
    if spec is None or len(spec["local"]) > 64 or len(addr) > 254:
        raise InvalidAddress(
            f"{what} {value!r} is not a valid e-mail address "
            "(expected user@example.com or Name <user@example.com>)"
        )
    return Address(display_name=name, addr_spec=addr)


def parse_recipients(to: str | list[str] | tuple[str, ...]) -> list[Address]:
    """One or more recipients, each checked; at least one is required."""
    items = [to] if isinstance(to, str) else list(to)
    if not items:
        raise InvalidAddress("no recipient given")
    return [parse_address(item, "recipient") for item in items]
