"""Dashboard sign-in: an API key exchanged for a server-side session behind a cookie.

The cookie holds only a random session id (HttpOnly, SameSite=Strict); the key
stays in this process's memory and is authenticated again on every request, so a
revoked key or a changed role counts at once. A write made with the cookie must
carry the session's CSRF token in ``X-CSRF-Token`` and, when the browser sends
one, an ``Origin`` of this server: SameSite already keeps other sites' requests
from carrying the cookie, the token covers older browsers and sibling subdomains.

Sessions live in the API process that issued them (a restart signs everyone out).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request
from jaseci_like_services.group_config.errors import Forbidden

#: The cookie's name; its value is a session id, never the key.
COOKIE = "jl_session"
CSRF_HEADER = "X-CSRF-Token"
#: Seconds a session lasts without being used.
IDLE_TTL = 8 * 3600.0
#: Sessions kept at most; the least recently used is dropped beyond.
MAX_SESSIONS = 10_000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRejected(Forbidden):
    """A write made with the session cookie but without this session's CSRF token,
    or from a page of another origin."""

    code = "csrf_rejected"


@dataclass
class Session:
    id: str
    #: The API key it signed in with (memory only; never sent back to the browser).
    token: str
    csrf: str
    last_used: float


class UiSessions:
    """Session id -> key, bounded in number and idle time; safe across threads."""

    def __init__(self, idle_ttl: float = IDLE_TTL, limit: int = MAX_SESSIONS) -> None:
        self._idle_ttl = idle_ttl
        self._limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, token: str) -> Session:
        now = time.monotonic()
        session = Session(secrets.token_urlsafe(32), token, secrets.token_urlsafe(32), now)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self._limit:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this id (its idle clock restarted), or None."""
        if not session_id or len(session_id) > 128:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_used > self._idle_ttl:
                del self._sessions[session_id]
                return None
            session.last_used = now
            self._sessions.move_to_end(session_id)
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def of(self, request: Request) -> Session | None:
        return self.get(request.cookies.get(COOKIE))


def check_write(request: Request, session: Session) -> None:
    """CsrfRejected unless a cookie-authenticated write is this session's own."""
    if request.method in SAFE_METHODS:
        return
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode("utf-8", "replace"), session.csrf.encode()):
        raise CsrfRejected(
            f"this change needs the {CSRF_HEADER} header of the signed-in page: "
            "reload the dashboard and try again"
        )


def check_origin(request: Request) -> None:
    """CsrfRejected when the browser says the request came from another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    here = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != here:
        raise CsrfRejected(f"a request from {origin!r} may not change anything here")
