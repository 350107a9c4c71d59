"""The base schemas of service configs: strict when declared, free-form when not."""

from __future__ import annotations

import functools
import types
import typing
from collections import abc
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    Secret,
    SecretBytes,
    SecretStr,
)

from jaseci_like.config.secrets import URL, VALUE, SecretPaths, quote_userinfo


@dataclass(frozen=True)
class Sensitive:
    """Marks a config field whose whole value is a secret, when ``SecretStr`` does not
    fit: ``token: Annotated[str, Sensitive()]``. Masked wherever it is shown, and
    encrypted when stored (see :class:`SecretText`)."""


@dataclass(frozen=True)
class _CredentialsInUrl:
    """Marks a URL field whose password is a secret (see :data:`CredentialUrl`)."""


def _quoted(value: Any) -> Any:
    return quote_userinfo(value) if isinstance(value, str) else value


#: A ``str`` that is a secret: masked in every output, encrypted when stored.
SecretText = Annotated[str, Sensitive()]
#: A URL that may carry credentials (``redis://:password@host:6379/0``). A password
#: that is not percent-encoded (holding ``/``, ``#``, ``?``, ``@``, a space...) is
#: encoded, so libraries read the host we read; the password is masked in every
#: output, and the URL encrypted when stored.
CredentialUrl = Annotated[str, BeforeValidator(_quoted), _CredentialsInUrl()]


class ServiceConfig(BaseModel):
    """Keys every service has. Subclasses add their own; unknown keys are refused.

    ``enabled`` and ``quiet`` are taken out of :attr:`CommonService.config` and set
    as attributes of the service (the seed's shape).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    quiet: bool = False


class FreeformConfig(ServiceConfig):
    """The config of a service that declares no schema (the seed's way).

    Every key the layers give is kept, as long as its value is JSON (what a glob
    can hold); ``enabled`` and ``quiet`` are still checked.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)


def is_freeform(schema: type[BaseModel]) -> bool:
    """True for a schema that keeps keys it does not declare."""
    return schema.model_config.get("extra") == "allow"


def known_keys(schema: type[BaseModel]) -> frozenset[str] | None:
    """The keys ``schema`` declares, or None when it takes any key."""
    return None if is_freeform(schema) else frozenset(schema.model_fields)


@functools.cache
def secret_paths(schema: type[BaseModel]) -> SecretPaths:
    """What ``schema`` marks secret: field paths ("*" for any key or item of a
    mapping or list) to VALUE (``SecretStr``, :class:`Sensitive`) or URL
    (:data:`CredentialUrl`). Nested models are followed."""
    found: dict[tuple[str, ...], str] = {}
    _collect(schema, (), found, set())
    return types.MappingProxyType(found)


def _collect(
    schema: type[BaseModel],
    prefix: tuple[str, ...],
    found: dict[tuple[str, ...], str],
    seen: set[type],
) -> None:
    if schema in seen:  # a recursive model
        return
    seen = seen | {schema}
    for name, info in schema.model_fields.items():
        path = (*prefix, name)
        for marker in info.metadata:
            _mark(marker, path, found)
        _walk_type(info.annotation, path, found, seen)


def _mark(marker: Any, path: tuple[str, ...], found: dict[tuple[str, ...], str]) -> None:
    if isinstance(marker, Sensitive):
        found[path] = VALUE
    elif isinstance(marker, _CredentialsInUrl):
        found.setdefault(path, URL)


def _walk_type(
    hint: Any, path: tuple[str, ...], found: dict[tuple[str, ...], str], seen: set[type]
) -> None:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *markers = typing.get_args(hint)
        for marker in markers:
            _mark(marker, path, found)
        _walk_type(base, path, found, seen)
    elif origin is Secret or (
        isinstance(hint, type) and issubclass(hint, SecretStr | SecretBytes | Secret)
    ):
        found[path] = VALUE
    elif isinstance(hint, type) and issubclass(hint, BaseModel):
        _collect(hint, path, found, seen)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            _walk_type(arg, path, found, seen)
    elif origin is not None:
        # A container: what matters is what it holds (a mapping's values).
        args = typing.get_args(hint)
        for arg in args[-1:] if origin in (dict, abc.Mapping) else args:
            _walk_type(arg, (*path, "*"), found, seen)
