"""Input rules checked before any SQL: dotfile paths, permissions and data.

>>> validate_path(".bashrc")
'.bashrc'
>>> validate_permission("644")
'644'
"""

from __future__ import annotations

import re
import unicodedata

from jaseci_like_services.group_config.errors import (
    InvalidDotfileData,
    InvalidDotfilePath,
    InvalidPermission,
)

MAX_PATH_BYTES = 255
#: Paths a dotfile may never take: the runtime writes these itself.
RESERVED_PATHS = frozenset(
    {".terminfo", ".jupyter", ".ssh", ".ssh/authorized_keys", ".local", ".config"}
)
_PERMISSION = re.compile(r"[0-7]{3}")


def utf8_size(text: str, what: str) -> int:
    """Bytes of ``text`` in UTF-8; text that has no UTF-8 form (lone surrogates) is refused."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        if what == "path":
            raise InvalidDotfilePath(
                f"path {text[:100]!a}: not valid Unicode text (not UTF-8 text: a lone"
                " surrogate, or in a URL a percent-escape such as %FF that is part of no"
                " UTF-8 character)"
            ) from None
        raise InvalidDotfileData(
            f"the {what} is not UTF-8 text: it holds a lone surrogate (such as \\ud800 in JSON)"
        ) from None


def _control_character(text: str) -> str | None:
    """The first control character (C0, DEL, C1) of ``text``, as U+XXXX, or None."""
    for ch in text:
        if unicodedata.category(ch) == "Cc":
            return f"U+{ord(ch):04X}"
    return None


def validate_lookup_path(path: object) -> str:
    """``path`` if some dotfile could be stored under it: text, not empty, UTF-8, no
    control character, at most 255 bytes.

    Reads, updates and deletes check this much, so that ``.nl`` plus a newline is
    refused rather than looked up; the naming rules below are for new paths only (a
    path stored before a rule was added stays reachable).
    """
    if not isinstance(path, str) or not path:
        raise InvalidDotfilePath("a dotfile path must be a non-empty string")
    size = utf8_size(path, "path")
    control = _control_character(path)
    if control is not None:
        raise InvalidDotfilePath(
            f"{path!r}: control characters ({control} here) are not allowed in a path"
        )
    if size > MAX_PATH_BYTES:
        raise InvalidDotfilePath(
            f"path of {size} bytes: at most {MAX_PATH_BYTES} bytes (UTF-8) are allowed"
        )
    return path


def validate_path(path: object) -> str:
    """``path`` if it is a relative POSIX path the service accepts (case-sensitive)."""
    path = validate_lookup_path(path)
    if path.startswith("/"):
        raise InvalidDotfilePath(f"{path!r}: the path must be relative (no leading '/')")
    parts = path.split("/")
    # "." is refused too: "./.ssh" must not slip past the reserved names.
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidDotfilePath(
            f"{path!r}: empty, '.' and '..' components are not allowed (write a/b, not a//b)"
        )
    if path in RESERVED_PATHS:
        raise InvalidDotfilePath(
            f"{path!r} is reserved (reserved: {', '.join(sorted(RESERVED_PATHS))})"
        )
    return path


def validate_permission(permission: object) -> str:
    """``permission`` if it is exactly three octal digits (``644``, ``755``, ``000``)."""
    if not isinstance(permission, str) or not _PERMISSION.fullmatch(permission):
        raise InvalidPermission(
            f"permission {permission!r}: give exactly three octal digits, e.g. 644 or 755"
        )
    return permission


def validate_data(data: object) -> str:
    """``data`` if it is text the databases can store (UTF-8, no NUL character)."""
    if not isinstance(data, str):
        raise InvalidDotfileData(f"dotfile data must be text, not {type(data).__name__}")
    if "\x00" in data:
        raise InvalidDotfileData("dotfile data must not contain NUL characters")
    utf8_size(data, "data")
    return data
