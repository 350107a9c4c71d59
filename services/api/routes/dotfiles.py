"""``/v1/groups/{group}/dotfiles``: a group's dotfiles, and bulk work on them.

``{path}`` may contain ``/`` (``.config/fish/config.fish``). GET lists or reads
(200), POST searches (200), PUT creates (201), PATCH updates (200), DELETE
deletes (204); copying and importing go to the task service (202).
"""

# No `from __future__ import annotations`: FastAPI reads the parameter annotations,
# and they name the `Caller` dependency local to each router factory.
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from jaseci_like_services.api import background
from jaseci_like_services.api.dto.v1 import (
    DotfileCopyV1,
    DotfileCreateV1,
    DotfileImportV1,
    DotfileListV1,
    DotfileSearchV1,
    DotfileUpdateV1,
    DotfileV1,
    DotfileWrittenV1,
    TaskAcceptedV1,
)
from jaseci_like_services.api.dto.v1.common import NO_CONTROL
from jaseci_like_services.api.dto.v1.dotfiles import CursorV1
from jaseci_like_services.api.dto.v1.mapping import (
    dotfile_list_v1,
    dotfile_v1,
    dotfile_written_v1,
)
from jaseci_like_services.api.request_path import TEXT
from jaseci_like_services.api.routes.common import (
    ERRORS,
    DomainQuery,
    GroupParam,
    JsonBody,
    LimitQuery,
    OffsetQuery,
    RequestParams,
    UrlText,
    offset_page,
)
from jaseci_like_services.api.routes.tasks import submit
from jaseci_like_services.api.state import ApiState
from jaseci_like_services.group_config.errors import DotfileNotFound
from jaseci_like_services.group_config.types import (
    CurrentUser,
    DotfileChanges,
    DotfileOrder,
    DotfileSpec,
)
from pydantic import BaseModel

from jaseci_like.repository import UNSET, CursorPagination, OffsetPagination, Pagination

# Checked by group_config, not here: a refused path is its `invalid_dotfile_path`,
# whatever the reason (a control character, not UTF-8, too long...).
DotfilePath = Annotated[
    str,
    Path(
        description="A relative POSIX path such as `.bashrc` or `.config/git/config`: "
        "at most 255 bytes of UTF-8, no control characters.",
    ),
]
PrefixQuery = Annotated[
    UrlText | None,
    Query(min_length=1, max_length=255, pattern=NO_CONTROL, description="Paths starting so."),
]
OrderQuery = Annotated[Literal["created", "path"], Query()]


class _Listing(BaseModel):
    """``GET /v1/groups/{group}/dotfiles``: the group, and the page and filter asked for."""

    group: GroupParam
    limit: LimitQuery = 100
    offset: OffsetQuery = 0
    domain: DomainQuery = None
    path_prefix: PrefixQuery = None
    order: OrderQuery = "created"


LISTING = RequestParams(_Listing, path=("group",))
#: One dotfile: the rest of the URL, newlines included (refused then by the path check).
ITEM = f"/{{path:{TEXT}}}"


def dotfile_routes(api: ApiState, caller: Callable[..., Awaitable[CurrentUser]]) -> APIRouter:
    router = APIRouter(prefix="/v1/groups/{group}/dotfiles", tags=["dotfiles"], responses=ERRORS)
    Caller = Annotated[CurrentUser, Depends(caller)]

    @router.get(
        "",
        response_model=DotfileListV1,
        operation_id="group-dotfiles-list",
        openapi_extra=LISTING.openapi,
    )
    async def list_dotfiles(request: Request) -> JsonBody:
        """The group's active dotfiles, and ``leftover_space``: the bytes it may still hold."""
        # The caller first (401 before 422, as FastAPI orders them), then the
        # parameters in one validation: see RequestParams.
        user = await caller(request)
        asked = LISTING(request)
        listing = await api.group_config().dotfiles.search(
            asked.group,
            path_prefix=asked.path_prefix,
            order=DotfileOrder(asked.order),
            pagination=offset_page(request, asked.limit, asked.offset),
            domain=asked.domain,
            user=user,
        )
        return JsonBody(dotfile_list_v1(listing))

    @router.post("/search", response_model=DotfileListV1, operation_id="group-dotfiles-search")
    async def search_dotfiles(
        group: GroupParam, body: DotfileSearchV1, user: Caller, domain: DomainQuery = None
    ) -> JsonBody:
        """Filter by path prefix, order by creation or path, page by offset or cursor."""
        page = body.page
        pagination: Pagination
        if isinstance(page, CursorV1):
            pagination = CursorPagination(page.limit, page.after, page.before)
        else:
            pagination = OffsetPagination(page.limit, page.offset)
        listing = await api.group_config().dotfiles.search(
            group,
            path_prefix=body.path_prefix,
            order=DotfileOrder(body.order),
            pagination=pagination,
            domain=domain,
            user=user,
        )
        return JsonBody(dotfile_list_v1(listing))

    @router.post(
        "/copy",
        status_code=202,
        response_model=TaskAcceptedV1,
        operation_id="group-dotfiles-copy",
    )
    async def copy_dotfiles(
        group: GroupParam, body: DotfileCopyV1, user: Caller, domain: DomainQuery = None
    ) -> JsonBody:
        """Copy every dotfile of the group into ``target``, in the background."""
        app = api.group_config()
        # Both groups resolved (and readable) now, so a typo is a 404 here, not a
        # failed task later; the task works on their ids.
        source = await app.groups.get(group, domain=domain, user=user)
        target = await app.groups.get(body.target, domain=body.target_domain, user=user)
        kwargs = {
            "source": str(source.id),
            "target": str(target.id),
            "overwrite": body.overwrite,
            "actor": background.actor_args(user),
            "limits": background.limits_args(app.limits),
        }
        return await submit(api, background.COPY, kwargs, user)

    @router.post(
        "/import",
        status_code=202,
        response_model=TaskAcceptedV1,
        operation_id="group-dotfiles-import",
    )
    async def import_dotfiles(
        group: GroupParam, body: DotfileImportV1, user: Caller, domain: DomainQuery = None
    ) -> JsonBody:
        """Create these dotfiles in the background; each refused one is reported by index."""
        app = api.group_config()
        found = await app.groups.get(group, domain=domain, user=user)
        kwargs = {
            "group": str(found.id),
            "dotfiles": [item.model_dump() for item in body.dotfiles],
            "overwrite": body.overwrite,
            "actor": background.actor_args(user),
            "limits": background.limits_args(app.limits),
        }
        return await submit(api, background.IMPORT, kwargs, user)

    @router.get(ITEM, response_model=DotfileV1, operation_id="group-dotfile-get")
    async def get_dotfile(
        group: GroupParam, path: DotfilePath, user: Caller, domain: DomainQuery = None
    ) -> JsonBody:
        found = await api.group_config().dotfiles.get(group, path, domain=domain, user=user)
        return JsonBody(dotfile_v1(found))

    @router.put(
        ITEM,
        status_code=201,
        response_model=DotfileWrittenV1,
        operation_id="group-dotfile-create",
    )
    async def create_dotfile(
        group: GroupParam,
        path: DotfilePath,
        body: DotfileCreateV1,
        user: Caller,
        domain: DomainQuery = None,
    ) -> JsonBody:
        """Create the dotfile; 409 if the path exists already (update it with PATCH)."""
        spec = DotfileSpec(path, body.data, body.permission)
        result = await api.group_config().dotfiles.create(group, spec, domain=domain, user=user)
        return JsonBody(dotfile_written_v1(result), status_code=201)

    @router.patch(ITEM, response_model=DotfileWrittenV1, operation_id="group-dotfile-update")
    async def update_dotfile(
        group: GroupParam,
        path: DotfilePath,
        body: DotfileUpdateV1,
        user: Caller,
        domain: DomainQuery = None,
    ) -> JsonBody:
        changes = DotfileChanges(
            data=UNSET if body.data is None else body.data,
            permission=UNSET if body.permission is None else body.permission,
        )
        result = await api.group_config().dotfiles.update(
            group, path, changes, domain=domain, user=user
        )
        return JsonBody(dotfile_written_v1(result))

    @router.delete(
        ITEM,
        status_code=204,
        response_class=Response,
        operation_id="group-dotfile-delete",
    )
    async def delete_dotfile(
        group: GroupParam,
        path: DotfilePath,
        user: Caller,
        domain: DomainQuery = None,
        purge: Annotated[bool, Query(description="Remove it for good, history too.")] = False,
    ) -> Response:
        app = api.group_config()
        if purge:
            if not await app.dotfiles.purge(group, path, domain=domain, user=user):
                raise DotfileNotFound(f"no dotfile {path!r} in the group, active or deleted")
        else:
            await app.dotfiles.delete(group, path, domain=domain, user=user)
        return Response(status_code=204)

    return router
