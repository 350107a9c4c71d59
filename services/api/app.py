"""The FastAPI application: routers, error answers, and the middlewares around it.

``create_app`` gives the FastAPI app (the service's ``app``: its routes and
OpenAPI document); ``wrap`` puts the request tracker and the body limit around
it, which is what uvicorn serves.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from jaseci_like_services.api import error_responses
from jaseci_like_services.api.auth import authenticator, document_keys
from jaseci_like_services.api.body_limit import BodyLimit
from jaseci_like_services.api.inflight import RequestTracker
from jaseci_like_services.api.instances import RegistryInstances
from jaseci_like_services.api.request_path import Utf8Path, whole_path
from jaseci_like_services.api.routes.dotfiles import dotfile_routes
from jaseci_like_services.api.routes.groups import group_routes
from jaseci_like_services.api.routes.probes import probe_routes
from jaseci_like_services.api.routes.system import system_routes
from jaseci_like_services.api.routes.tasks import task_routes
from jaseci_like_services.api.routes.ui import ui_routes
from jaseci_like_services.api.routes.users import user_routes
from jaseci_like_services.api.sessions import UiSessions
from jaseci_like_services.api.state import ApiState

TITLE = "jaseci-like API"
VERSION = "1.0.0"


def create_app(api: ApiState) -> FastAPI:
    docs = api.settings.docs
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Group dotfiles, groups, users and background tasks. Every `/v1` "
        "route needs `Authorization: Bearer <API key>`; errors are `{code, message}`.",
        root_path=api.settings.root_path,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        dependencies=[Depends(whole_path)],
    )
    error_responses.install(app)
    # The dashboard's sessions stand in for a key only while it is served.
    sessions = UiSessions() if api.settings.ui else None
    caller = authenticator(api, sessions)
    #: Where /v1/instances reads the instances from (the registry, this one live).
    app.state.instances = RegistryInstances(api)
    app.include_router(probe_routes(api))
    # Dotfiles first: their prefix is longer than /v1/groups/{group}.
    app.include_router(dotfile_routes(api, caller))
    app.include_router(group_routes(api, caller))
    app.include_router(user_routes(api, caller))
    app.include_router(task_routes(api, caller))
    app.include_router(system_routes(api, caller))
    if sessions is not None:
        app.include_router(ui_routes(api, sessions))
    document_keys(app)
    app.add_middleware(Utf8Path)
    return app


def wrap(app: FastAPI, api: ApiState) -> RequestTracker:
    """What uvicorn serves: the tracker outermost, then the body limit, then ``app``."""
    return RequestTracker(BodyLimit(app, api.settings.max_body_bytes), api.metrics)
