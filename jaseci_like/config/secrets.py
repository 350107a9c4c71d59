"""Masking of secrets: values of secret-looking keys and credentials inside URLs.

Everything that leaves the process as text (logs, ``status``, ``config show``,
error messages) goes through :func:`mask` first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api_?key|private_?key|credentials?|auth)$", re.IGNORECASE
)
# The scheme is bounded: unbounded, a long text without "://" costs quadratic time
# (every start position scans to its end), seconds for a 10 kB error message.
_URL_WITH_USERINFO = re.compile(r"[a-z][a-z0-9+.-]{0,31}://[^/\s]*@", re.IGNORECASE)


#: Longest text a message repeats in full; the rest is elided.
SHOWN_CHARS = 200


def printable(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` safe to put in a message: characters a terminal would hide or act on
    (control, bidi overrides, lone surrogates) escaped, at most ``limit`` of it kept."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    return text


def is_secret_key(key: str) -> bool:
    """True for keys whose values are secrets (``password``, ``api_key``, ``token``...)."""
    return bool(_SECRET_KEY.search(key))


def mask_url(text: str) -> str:
    """Hide the password of every ``scheme://user:password@host`` inside ``text``."""

    def one(match: re.Match[str]) -> str:
        head = match.group(0)
        scheme, rest = head.split("://", 1)
        userinfo = rest[:-1]
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        return f"{scheme}://{user}:{MASK}@" if user else f"{scheme}://{MASK}@"

    return _URL_WITH_USERINFO.sub(one, text)


def mask(value: Any, key: str = "") -> Any:
    """A copy of ``value`` safe to print: secret keys masked, URL passwords hidden."""
    if key and is_secret_key(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return mask_url(value) if "@" in value else value
    if isinstance(value, Mapping):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


def redact_url(url: str) -> str:
    """``url`` with any password replaced, for a URL known to be one."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
