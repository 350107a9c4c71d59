"""Dotfile bodies: a dotfile, a listing with ``leftover_space``, writes, search, bulk work."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from jaseci_like_services.api.dto.v1.common import Line, PageV1, Request, Text
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic.json_schema import SkipJsonSchema

#: Three octal digits, as ``chmod`` takes them.
PERMISSION = r"^[0-7]{3}$"


def _no_default(schema: dict[str, Any]) -> None:
    """An optional field whose absence means "unchanged": no ``default: null`` shown."""
    schema.pop("default", None)


class DotfileV1(BaseModel):
    id: int
    group_id: uuid.UUID
    path: str
    permission: str
    data: str
    status: Literal["active", "deleted"]
    created_at: dt.datetime
    updated_at: dt.datetime


class DotfileListV1(PageV1):
    items: list[DotfileV1]
    #: Bytes the group may still hold (paths and data, UTF-8).
    leftover_space: int


class DotfileWrittenV1(BaseModel):
    """A dotfile created or changed, and what the group has left afterwards."""

    dotfile: DotfileV1
    leftover_space: int


class DotfileCreateV1(Request):
    """``PUT .../dotfiles/{path}``: the path is in the URL."""

    data: Text
    permission: str = Field(default="644", pattern=PERMISSION)


class DotfileUpdateV1(Request):
    """``PATCH .../dotfiles/{path}``: what to change (at least one field)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    # Absent means "keep it"; null is not a value (the schema shows no null).
    data: Text | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    permission: Annotated[str, Field(pattern=PERMISSION)] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_default
    )

    @model_validator(mode="after")
    def _something(self) -> DotfileUpdateV1:
        if self.data is None and self.permission is None:
            raise ValueError("nothing to change: give data, permission or both")
        return self


class OffsetV1(Request):
    """Page by offset (the default): ``limit`` rows after skipping ``offset``."""

    by: Literal["offset"] = "offset"
    # Strict: true, "5" or 5.0 is a mistake to point out, not a number to guess.
    limit: int = Field(default=50, ge=1, le=1000, strict=True)
    offset: int = Field(default=0, ge=0, le=1_000_000, strict=True)


Cursor = Annotated[Line, Field(min_length=1, max_length=2000)]


class CursorV1(Request):
    """Page by cursor: the first page, then ``after`` an earlier page's ``next_cursor``
    (or ``before`` its ``previous_cursor``); exact while rows are added."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"not": {"required": ["after", "before"]}}
    )

    by: Literal["cursor"]
    limit: int = Field(default=50, ge=1, le=1000, strict=True)
    after: Cursor | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    before: Cursor | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)

    @model_validator(mode="after")
    def _one_way(self) -> CursorV1:
        if self.after is not None and self.before is not None:
            raise ValueError("give a cursor to page after, or one to page before, not both")
        return self


def _page_kind(page: Any) -> str | None:
    """Which page ``page`` is (``by``, offset when absent); None: neither."""
    if isinstance(page, OffsetV1 | CursorV1):
        return page.by
    by = page.get("by", "offset") if isinstance(page, dict) else None
    return by if by in ("offset", "cursor") else None


# Told apart by ``by``, so a refused page names the fields of its own kind only.
PageRequestV1 = Annotated[
    Annotated[OffsetV1, Tag("offset")] | Annotated[CursorV1, Tag("cursor")],
    Discriminator(
        _page_kind,
        custom_error_type="page_kind",
        custom_error_message="a page is an object with 'by': 'offset' (the default) or 'cursor'",
    ),
]


class DotfileSearchV1(Request):
    """``POST .../dotfiles/search``: filters, ordering and a page."""

    path_prefix: Line | None = Field(default=None, max_length=255)
    order: Literal["created", "path"] = "created"
    page: PageRequestV1 = Field(default_factory=OffsetV1)


class DotfileCopyV1(Request):
    """``POST .../dotfiles/copy``: copy every active dotfile of the group into ``target``."""

    target: Line = Field(min_length=1, max_length=255, description="Group UUID or name.")
    target_domain: Line | None = Field(default=None, min_length=1, max_length=64)
    #: True: replace dotfiles the target has already; False: leave them, reported as skipped.
    overwrite: bool = False


class DotfileImportItemV1(Request):
    path: Text
    data: Text
    permission: str = Field(default="644", pattern=PERMISSION)


class DotfileImportV1(Request):
    """``POST .../dotfiles/import``: create (or, with ``overwrite``, replace) these dotfiles."""

    dotfiles: list[DotfileImportItemV1] = Field(min_length=1, max_length=1000)
    overwrite: bool = False
