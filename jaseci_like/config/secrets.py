"""Secrets: which config values are secret, and how to keep them out of text.

A value is secret when its schema says so (pydantic ``SecretStr``, or the markers
of :mod:`jaseci_like.config.schema`), when its key is named like a credential
(``key``, ``token``, ``password``, ``dsn``... as a whole word of the name), or when
it is the password inside a URL. URLs are read by their structure, also when the
password in them is not percent-encoded: the credentials run from ``scheme://`` to
the last ``@`` before the host part.

Everything that leaves the process as text (logs, ``status``, ``config show``,
error messages, messages of the libraries we call) goes through :func:`mask_url`
(free text) or :func:`mask` (config values) first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

MASK = "***"

#: Secret parts of a schema: a path of keys ("*" for any key or item) -> VALUE (the
#: whole value is secret) or URL (the password inside the URL is).
SecretPaths = Mapping[tuple[str, ...], str]
VALUE = "value"
URL = "url"

#: Whole words of a key name that name a credential.
_CREDENTIAL_WORDS = frozenset(
    {
        "key", "keys", "secret", "secrets", "password", "passwords", "passwd", "pass",
        "pwd", "passphrase", "token", "tokens", "credential", "credentials", "dsn",
        "auth", "apikey", "accesskey", "secretkey", "privatekey", "authtoken",
        "accesstoken", "refreshtoken", "clientsecret", "cookie",
    }
)  # fmt: skip
#: A word after the credential word that makes the key name something about the
#: secret rather than the secret itself (``key_prefix``, ``token_ttl``, ``password_file``).
_QUALIFIERS = frozenset(
    {
        "file", "path", "dir", "prefix", "suffix", "name", "id", "ttl", "timeout",
        "header", "env", "length", "size", "type", "kind", "enabled", "count", "url",
        "host", "port", "field", "version",
    }
)  # fmt: skip
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# The scheme is bounded, and must start a word: unbounded, a long text without
# "://" costs quadratic time (every start position scans to its end).
_SCHEME = re.compile(r"(?<![\w+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://")
#: What may follow a host (and port) in a URL, or in a sentence holding one.
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[\w~%-]+(?:\.[\w~%-]+)*)?(?::\d{0,5})?"
    r"(?=[/?#\s'\"<>()\[\],;]|[.:]?\Z|[.:]\s)"
)
_LEGAL_USERINFO = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*")
#: Characters that end the authority of a URL (the strict reading); in free text,
#: whitespace too.
_AUTHORITY_END = re.compile(r"[/?#]")
_AUTHORITY_END_TEXT = re.compile(r"[/?#\s]")
#: How far past ``scheme://`` free text is searched for the ``@`` that ends the
#: credentials: a bound on the cost, far beyond any real password.
_WINDOW = 512

#: Secrets shorter than this are not searched for in free text: masking every "ab"
#: in a message would garble it and hide nothing worth hiding.
MIN_SECRET_LEN = 4

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


# -- key names ---------------------------------------------------------------------------


def is_secret_key(key: str) -> bool:
    """True for a key named like a credential: ``password``, ``api_key``, ``apiKey``,
    ``token``, ``key``, ``dsn``... as a whole word (``monkey`` is not), unless a word
    after it says the key holds something else (``key_prefix``, ``token_ttl``)."""
    words = [w.lower() for w in _WORDS.findall(key)]
    found = [i for i, w in enumerate(words) if w in _CREDENTIAL_WORDS]
    if not found:
        return False
    return not any(w in _QUALIFIERS for w in words[found[-1] + 1 :])


# -- URLs --------------------------------------------------------------------------------


def _host_after(text: str, at: int) -> bool:
    """Whether a host part (maybe empty before a path) follows the ``@`` at ``at``."""
    found = _HOST.match(text, at + 1)
    if found is None:
        return False
    return bool(found.group(0)) or text.startswith("/", at + 1)


def _userinfo_span(text: str, start: int, stop: int, free_text: bool) -> int | None:
    """Index of the ``@`` that ends the credentials of the URL whose authority begins
    at ``start`` (searched up to ``stop``), or None when it has none.

    The strict reading (the authority ends at the first ``/?#``) wins when it is a
    well-formed URL: legal userinfo and host, any other ``@`` inside a query's
    ``key=value`` (``?application_name=a@b``). Otherwise the credentials run to the
    last ``@`` followed by a host part: a password holding ``/``, ``#``, ``?``, ``@``
    or a space was not percent-encoded.
    """
    candidates = [i for i in range(start, stop) if text[i] == "@" and _host_after(text, i)]
    ends = _AUTHORITY_END_TEXT if free_text else _AUTHORITY_END
    end_match = ends.search(text, start, stop)
    authority_end = end_match.start() if end_match else stop
    strict_at = text.rfind("@", start, authority_end)
    if strict_at < 0:
        if free_text and _HOST.fullmatch(text, start, authority_end):
            return None  # a URL without credentials, then prose
        return candidates[-1] if candidates else None
    if not candidates:
        return None
    strict_ok = (
        _LEGAL_USERINFO.fullmatch(text, start, strict_at) is not None
        and _HOST.fullmatch(text, strict_at + 1, authority_end) is not None
    )
    later = [i for i in candidates if i > strict_at]
    if strict_ok and all(_in_query(text, authority_end, i) for i in later):
        return strict_at
    return candidates[-1]


def _in_query(text: str, authority_end: int, at: int) -> bool:
    # An "@" in a query's key=value of the same URL (``?application_name=a@b``), not
    # the end of a password: what follows it has no port and no path.
    query = text.find("?", authority_end, at)
    if query < 0 or any(c.isspace() or c == "#" for c in text[authority_end:at]):
        return False
    host = _HOST.match(text, at + 1)
    if host is None or ":" in host.group(0) or text.startswith("/", host.end()):
        return False
    return "=" in text[query:at]


def _urls(text: str, free_text: bool) -> Iterable[tuple[int, int, int]]:
    """(scheme start, userinfo start, ``@`` index) of every URL with credentials."""
    pos = 0
    while True:
        found = _SCHEME.search(text, pos)
        if found is None:
            return
        start = found.end()
        stop = len(text)
        if free_text:
            newline = text.find("\n", start)
            stop = min(stop, start + _WINDOW, newline if newline >= 0 else stop)
            following = _SCHEME.search(text, start, stop)
            if following is not None:
                stop = following.start()
        at = _userinfo_span(text, start, stop, free_text)
        if at is None:
            pos = start
            continue
        yield found.start(), start, at
        pos = at + 1


def _masked_userinfo(userinfo: str) -> str:
    user, sep, _ = userinfo.partition(":")
    return f"{user}:{MASK}" if sep and user else MASK


def _mask_urls(text: str, free_text: bool) -> str:
    out: list[str] = []
    pos = 0
    for _, start, at in _urls(text, free_text):
        out.append(text[pos:start])
        out.append(_masked_userinfo(text[start:at]))
        pos = at
    out.append(text[pos:])
    return "".join(out)


def url_passwords(url: str, lone_user: bool = True) -> set[str]:
    """The password of ``url`` (a URL value), in every form a message may repeat it:
    as written, decoded and percent-encoded. Empty when it has none.

    Userinfo without a ``:`` may be a token (``https://TOKEN@host``), so it counts
    (and is masked in its URL) unless ``lone_user`` is false: the strings remembered
    for masking in free text leave it out, because in the schemes we speak
    (``postgresql://postgres@``, ``redis://user@``) it is a user name, and hiding a
    word like ``postgres`` everywhere would mangle every message naming the scheme.
    """
    found: set[str] = set()
    for _, start, at in _urls(url, free_text=False):
        user, sep, password = url[start:at].partition(":")
        secret = password if sep else (user if lone_user else "")
        if secret:
            found |= {secret, unquote(secret), quote(secret, safe="")}
    return found


def quote_userinfo(url: str) -> str:
    """``url`` with its user and password percent-encoded when they are not already,
    so that every library reads the host, port and password we read.

    Userinfo that is well-formed (legal characters, valid ``%XX``) is kept as given.
    """
    spans = list(_urls(url, free_text=False))
    if not spans:
        return url
    _, start, at = spans[0]
    userinfo = url[start:at]
    if _LEGAL_USERINFO.fullmatch(userinfo):
        return url
    user, sep, password = userinfo.partition(":")
    encoded = quote(user, safe="") + (f":{quote(password, safe='')}" if sep else "")
    return f"{url[:start]}{encoded}{url[at:]}"


def redact_url(url: str) -> str:
    """``url`` (a URL value) with its password replaced."""
    return _mask_urls(url, free_text=False)


# -- known secret values -----------------------------------------------------------------


class KnownSecrets:
    """The secret strings of every config this process has read, so that a message
    repeating one (a library's error, a log line) is masked wherever it is shown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        #: Longest first, so a secret containing another is masked whole.
        self._ordered: tuple[str, ...] = ()

    def add(self, values: Iterable[str]) -> None:
        new = {v for v in values if len(v) >= MIN_SECRET_LEN} - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def hide(self, text: str, extra: Iterable[str] = ()) -> str:
        ordered = self._ordered
        more = [v for v in extra if len(v) >= MIN_SECRET_LEN and v not in self._values]
        if more:
            ordered = tuple(sorted((*ordered, *more), key=len, reverse=True))
        for secret in ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


#: The secrets of this process (config is read per process, so are its secrets).
KNOWN = KnownSecrets()


def mask_url(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` (any message) with every secret hidden: each known secret value of
    this process's config (and ``extra``), and the password of every URL in it."""
    return _mask_urls(KNOWN.hide(text, extra), free_text=True)


# -- config values -----------------------------------------------------------------------


def path_kind(path: tuple[str, ...], paths: SecretPaths | None) -> str | None:
    """VALUE or URL when the schema marks ``path`` secret, else None."""
    if not paths:
        return None
    for pattern, kind in paths.items():
        if len(pattern) == len(path) and all(
            p in ("*", k) for p, k in zip(pattern, path, strict=True)
        ):
            return kind
    return None


def _is_hidden_type(value: Any) -> bool:
    # pydantic's SecretStr / SecretBytes / Secret[...], without importing pydantic.
    return callable(getattr(value, "get_secret_value", None))


def _named_secret(value: Any) -> bool:
    # A value under a credential-named key that can hold a secret (not a flag, not empty).
    return value not in (None, "") and not isinstance(value, bool)


def is_secret_leaf(path: tuple[str, ...], value: Any, paths: SecretPaths | None = None) -> bool:
    """Whether the value at ``path`` is (or holds) a secret that must not be stored
    or shown as it is."""
    if _is_hidden_type(value):
        return True
    kind = path_kind(path, paths)
    if kind == VALUE or (path and is_secret_key(path[-1])):
        return _named_secret(value)
    return isinstance(value, str) and bool(url_passwords(value))


def mask(
    value: Any, key: str = "", paths: SecretPaths | None = None, at: tuple[str, ...] = ()
) -> Any:
    """A copy of config ``value`` safe to print: secret values (by schema or by key
    name) masked, URL passwords hidden. ``paths``: what the schema marks secret;
    ``at``: where ``value`` is in the config (default: under ``key``)."""
    at = at or ((key,) if key else ())
    kind = path_kind(at, paths)
    if _is_hidden_type(value):
        return MASK
    if (kind == VALUE or (key and is_secret_key(key))) and _named_secret(value):
        return MASK
    if isinstance(value, str):
        return _mask_urls(value, free_text=False) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: mask(v, str(k), paths, (*at, str(k))) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, "", paths, (*at, "*")) for v in value]
    return value


def secret_strings(value: Any, paths: SecretPaths | None = None) -> set[str]:
    """Every secret string inside config ``value``: marked values, values of
    credential-named keys, URL passwords (numbers as their text)."""
    found: set[str] = set()

    def walk(item: Any, at: tuple[str, ...], secret: bool) -> None:
        if _is_hidden_type(item):
            item, secret = item.get_secret_value(), True
        if isinstance(item, Mapping):
            for k, v in item.items():
                walk(v, (*at, str(k)), secret or _marked(v, (*at, str(k))))
        elif isinstance(item, list | tuple):
            for v in item:
                walk(v, (*at, "*"), secret)
        elif isinstance(item, bytes):
            walk(item.decode(errors="replace"), at, secret)
        elif isinstance(item, str):
            if secret:
                found.add(item)
            found.update(url_passwords(item, lone_user=False))
        elif secret and isinstance(item, int | float) and not isinstance(item, bool):
            found.add(str(item))

    def _marked(item: Any, at: tuple[str, ...]) -> bool:
        return path_kind(at, paths) == VALUE or is_secret_key(at[-1])

    walk(value, (), False)
    return {s for s in found if s}


def remember(value: Any, paths: SecretPaths | None = None) -> None:
    """Add the secrets of config ``value`` to the ones this process masks everywhere."""
    KNOWN.add(secret_strings(value, paths))
