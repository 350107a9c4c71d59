"""What every v1 body shares: the error body, request strictness, text rules, pages."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class ErrorV1(BaseModel):
    """Every error: a stable ``code`` to branch on, a ``message`` for people."""

    code: str = Field(examples=["dotfile_not_found"])
    message: str


class Request(BaseModel):
    """Base of request bodies: an unknown field is refused (422), not ignored."""

    model_config = ConfigDict(extra="forbid")


def _storable(value: str) -> str:
    """Text a database can store: UTF-8 encodable (JSON can carry lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


#: Text of a request body.
Text = Annotated[str, AfterValidator(_storable)]
#: No control characters (C0, DEL, C1): names, emails, paths, cursors. The characters
#: themselves, not ``\x`` escapes, so every JSON Schema tool reads the class alike.
NO_CONTROL = "^[^\x00-\x1f\x7f-\x9f]*$"
Line = Annotated[str, AfterValidator(_storable), Field(pattern=NO_CONTROL)]


class PageV1(BaseModel):
    """Paging facts of a listing; cursors are set when the request paged by cursor."""

    total_count: int | None
    has_next: bool
    has_previous: bool
    next_cursor: str | None = None
    previous_cursor: str | None = None
