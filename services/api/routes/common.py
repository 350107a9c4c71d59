"""What the route modules share: parameter types and the documented error answers."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from jaseci_like_services.api.dto.v1.common import NO_CONTROL, ErrorV1
from pydantic import AfterValidator, BaseModel, ValidationError

from jaseci_like.repository import InvalidQuery, OffsetPagination

_DESCRIPTIONS = {
    400: "A limit of the group, or a page or cursor that cannot be used.",
    401: "No API key, an unknown one, or a revoked one.",
    403: "The caller may not do this.",
    404: "The group, dotfile, user or task does not exist (or is not the caller's).",
    409: "It exists already.",
    413: "The request body is too large.",
    422: "The request is not valid (an unknown field included).",
    503: "A service or the database is not available; retry later.",
}
#: What every authenticated route may answer besides its success.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorV1, "description": text} for status, text in _DESCRIPTIONS.items()
}


def _utf8(value: str) -> str:
    """A URL part that was UTF-8: a percent-escape that is not (``%FF``) reaches the
    routes as a lone surrogate (see request_path.py), and is refused here."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "must be UTF-8 text (a percent-escape such as %FF is not part of a UTF-8 character)"
        ) from None
    return value


#: Text of the URL, checked to be UTF-8.
UrlText = Annotated[str, AfterValidator(_utf8)]

GroupParam = Annotated[
    UrlText,
    Path(
        min_length=1,
        max_length=255,
        pattern=NO_CONTROL,
        description="The group's UUID, or its name (in `domain`; default: the caller's).",
    ),
]
UserParam = Annotated[
    UrlText,
    Path(
        min_length=1,
        max_length=255,
        pattern=NO_CONTROL,
        description="The user's UUID or email.",
    ),
]
DomainQuery = Annotated[
    UrlText | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=NO_CONTROL,
        description="Domain of a group named by name (default: the caller's).",
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="Rows on the page.")]
OffsetQuery = Annotated[int, Query(ge=0, le=1_000_000, description="Rows skipped before it.")]


def offset_page(request: Request, limit: int, offset: int) -> OffsetPagination:
    """The page asked for; a parameter given twice is refused (which one counts would be
    a guess). A value that is not a number in range is refused before this runs."""
    params = request.query_params
    for name in ("limit", "offset"):
        given = len(params.getlist(name))
        if given > 1:
            raise InvalidQuery(f"{name} is given {given} times: give it once")
    return OffsetPagination(limit, offset)


async def _offset_page(
    request: Request, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> OffsetPagination:
    """:func:`offset_page` as a dependency (``async``, though it awaits nothing: FastAPI
    runs a plain function in a worker thread, a hand-off that cost more than the rest
    of a listing)."""
    return offset_page(request, limit, offset)


#: ``?limit=&offset=`` of a listing, as a page.
PageQuery = Annotated[OffsetPagination, Depends(_offset_page)]


M = TypeVar("M", bound=BaseModel)


class RequestParams(Generic[M]):
    """The path and query parameters of a route as one pydantic model, validated in one
    call: for the busiest routes, where FastAPI's solving of each declared parameter
    cost more than the rest of the framework (about 0.1 ms a request). The route takes
    only ``request`` and calls this; ``openapi`` documents the parameters as FastAPI
    would have. A refused value is the same RequestValidationError, at
    ``("path" | "query", name)``."""

    def __init__(self, model: type[M], path: tuple[str, ...]) -> None:
        self.model = model
        self.path = path

    def __call__(self, request: Request) -> M:
        values: dict[str, Any] = dict(request.query_params)
        for name in self.path:
            values[name] = request.path_params[name]
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": (self._where(e["loc"]), *e["loc"])} for e in exc.errors()]
            ) from None

    def _where(self, loc: tuple[int | str, ...]) -> str:
        return "path" if loc and loc[0] in self.path else "query"

    @property
    def openapi(self) -> dict[str, Any]:
        """``openapi_extra`` of the route: its parameters, as FastAPI writes them."""
        schema = self.model.model_json_schema()
        required = set(schema.get("required", ()))
        parameters = []
        for name, field in schema["properties"].items():
            where = "path" if name in self.path else "query"
            parameter = {"name": name, "in": where, "required": name in required}
            if "description" in field:
                parameter["description"] = field["description"]
            parameters.append(parameter | {"schema": field})
        return {"parameters": parameters}


class JsonBody(Response):
    """A pydantic body serialized once, by pydantic, with no second validation."""

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(model.__pydantic_serializer__.to_json(model), status_code)
