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
        error = InvalidDotfilePath if what == "path" else InvalidDotfileData
        raise error(f"the {what} is not valid Unicode text (it cannot be UTF-8 encoded)") from None


def validate_path(path: object) -> str:
    """``path`` if it is a relative POSIX path the service accepts (case-sensitive)."""
    if not isinstance(path, str) or not path:
        raise InvalidDotfilePath("a dotfile path must be a non-empty string")
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        raise InvalidDotfilePath(f"{path!r}: control characters are not allowed in a path")
    size = utf8_size(path, "path")
    if size > MAX_PATH_BYTES:
        raise InvalidDotfilePath(
            f"path of {size} bytes: at most {MAX_PATH_BYTES} bytes (UTF-8) are allowed"
        )
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
