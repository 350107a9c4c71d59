"""``/ui``: the dashboard page, its static files, and signing in and out.

The page is plain HTML, CSS and JavaScript shipped inside the package (no build
step, no network), and reads the same ``/v1`` endpoints a script would. Signing in
trades an API key for a session cookie (see sessions.py); the key never reaches
the browser's storage.
"""

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from jaseci_like_services.api.dto.v1.ui import SessionV1, SignInV1
from jaseci_like_services.api.errors import Unauthorized
from jaseci_like_services.api.routes.common import JsonBody
from jaseci_like_services.api.sessions import COOKIE, Session, UiSessions, check_origin, check_write
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.group_config.types import CurrentUser

#: The files the page is made of, and their types; nothing else is served.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
#: Only this server's own scripts, styles and API; no framing, no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
SIGNED_OUT = "not signed in: sign in with an API key"


def _load() -> dict[str, bytes]:
    folder = resources.files("jaseci_like_services.api") / "ui"
    return {name: (folder / name).read_bytes() for name in FILES}


def _session_body(session: Session, user: CurrentUser) -> JsonBody:
    body = SessionV1(
        user_id=user.id, role=user.role.value, domain=user.domain, csrf_token=session.csrf
    )
    response = JsonBody(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def ui_routes(api: ApiState, sessions: UiSessions) -> APIRouter:
    router = APIRouter(prefix="/ui", include_in_schema=False)
    files = _load()
    cookie_path = api.settings.root_path or "/"

    def page(name: str) -> Response:
        return Response(files[name], media_type=FILES[name], headers=SECURITY_HEADERS)

    @router.get("")
    async def ui_root() -> Response:
        return RedirectResponse(f"{api.settings.root_path}/ui/", status_code=307)

    @router.get("/")
    async def ui_index() -> Response:
        return page("index.html")

    @router.get("/static/{name}")
    async def ui_static(name: str) -> Response:
        if name not in FILES or name == "index.html":
            raise HTTPException(404, f"no file {name!r} in the dashboard")
        return page(name)

    @router.post("/session")
    async def sign_in(request: Request, body: Annotated[SignInV1, Body()]) -> Response:
        # A sign-in forged by another site would put the victim in the forger's account.
        check_origin(request)
        user = await api.keys.authenticate(body.key)
        session = sessions.open(body.key)
        answer = _session_body(session, user)
        answer.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=cookie_path,
        )
        return answer

    @router.get("/session")
    async def current_session(request: Request) -> Response:
        session = sessions.of(request)
        if session is None:
            raise Unauthorized(SIGNED_OUT)
        user = await api.keys.authenticate(session.token)
        return _session_body(session, user)

    @router.delete("/session", status_code=204)
    async def sign_out(request: Request) -> Response:
        session = sessions.of(request)
        answer = Response(status_code=204, headers={"Cache-Control": "no-store"})
        if session is not None:
            check_write(request, session)
            sessions.close(session.id)
        answer.delete_cookie(COOKIE, path=cookie_path, httponly=True, samesite="strict")
        return answer

    return router
