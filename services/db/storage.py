"""Why an SQLite database file cannot be opened or written: its path and the OS reason.

SQLite says "unable to open database file", "attempt to write a readonly
database", "database or disk is full" or "disk I/O error", naming neither the file
nor the operating system's reason. :func:`storage_error` finds both, by doing what
SQLite needed (create a file in the folder, write to it, open the database file and
its ``-wal`` / ``-shm`` companions for writing) and reading the error the OS gives.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from pathlib import Path

from jaseci_like.repository import DatabaseUnavailable

#: SQLite's primary result codes that are about the file and its disk.
_STORAGE_CODES = frozenset(
    {
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_PERM,
    }
)
#: Bytes the probe writes: two pages, as a page write is what failed.
_PROBE_BYTES = 8192
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class DatabaseStorageError(DatabaseUnavailable):
    """The SQLite database file cannot be opened or written: a folder or file that is
    not writable, a read-only file system, a full disk. ``path`` is the database file,
    ``why`` what the operating system (or SQLite) said. Nothing was changed."""

    code = "database_storage"

    def __init__(self, message: str, path: Path, why: str) -> None:
        super().__init__(message)
        self.path = path
        self.why = why


def storage_error(exc: BaseException, path: Path) -> DatabaseStorageError | None:
    """The typed error for ``exc`` (a sqlite3 error, or SQLAlchemy's wrapping of one)
    when it is about the file ``path`` or its disk; None when it is about something
    else (a lock, a constraint, SQL), or when no cause in the file system is found
    (a read-only connection asked to write), except for a full disk."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None)
    if not isinstance(code, int) or code & 0xFF not in _STORAGE_CODES:
        return None
    primary = code & 0xFF
    verb = "opened" if primary == sqlite3.SQLITE_CANTOPEN else "written"
    found = os_reason(path)
    if found is None:
        if primary != sqlite3.SQLITE_FULL:
            # Not the folder, the file or the disk (e.g. a read-only connection asked
            # to write): SQLite's own words stand.
            return None
        found = (
            f"{orig} ({_free(path.parent)} free in {path.parent})",
            "free space there or in the temporary folder, or set db.data_dir (or db.url)",
        )
    reason, advice = found
    return DatabaseStorageError(
        f"the SQLite database {path} cannot be {verb}: {reason}; {advice}", path, reason
    )


def folder_error(directory: Path, exc: OSError, path: Path) -> DatabaseStorageError:
    """The typed error for the data folder of ``path`` that could not be created."""
    target = Path(exc.filename) if exc.filename else directory
    # The folder that refused is the nearest one that exists (mkdir -p stopped there).
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    reason = f"cannot create the folder {target}: {_strerror(exc)}"
    return DatabaseStorageError(
        f"the SQLite database {path} cannot be opened: {reason}; {_advice(exc.errno, parent)}",
        path,
        reason,
    )


def os_reason(path: Path) -> tuple[str, str] | None:
    """(what the OS refuses, what to do) for the database file ``path``, found by
    trying to write where SQLite writes; None when every try succeeds."""
    directory = path.parent
    if not directory.is_dir():
        return f"its folder {directory} does not exist", "create it or set db.data_dir"
    failure = _probe_folder(directory)
    if failure is not None:
        what = (
            f"cannot write in its folder {directory}"
            if failure.errno in _NO_SPACE
            else f"cannot create files in its folder {directory} (SQLite needs to, for its journal)"
        )
        return f"{what}: {_strerror(failure)}", _advice(failure.errno, directory)
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        failure = _probe_file(file)
        if failure is not None:
            return (
                f"cannot open {file} for writing: {_strerror(failure)}",
                _advice(failure.errno, file),
            )
    return None


def _probe_folder(directory: Path) -> OSError | None:
    """Create, write and remove a small file in ``directory``; the error, if any."""
    probe = directory / f".jaseci-like-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return exc
    try:
        os.write(fd, b"\0" * _PROBE_BYTES)
    except OSError as exc:
        return exc
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)
    return None


def _probe_file(file: Path) -> OSError | None:
    """Open an existing ``file`` for writing (changing nothing); the error, if any."""
    try:
        fd = os.open(file, os.O_RDWR)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc
    os.close(fd)
    return None


def _strerror(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    text = (exc.strerror or str(exc)).lower()
    return f"{text} ({name})" if name else text


def _advice(code: int | None, where: Path) -> str:
    other = "or set db.data_dir (or db.url) to another place"
    if code in _NO_SPACE:
        return f"free space on the disk of {where} ({_free(where)} free), {other}"
    if code == errno.EROFS:
        return f"mount the file system of {where} read-write, {other}"
    if code in (errno.EACCES, errno.EPERM):
        return f"let this user (uid {os.geteuid()}) write {where}, {other}"
    return f"check {where}, {other}"


def _free(where: Path) -> str:
    """Free space on the file system of ``where`` (or its nearest existing parent)."""
    folder = where if where.is_dir() else where.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return "unknown"
    free = stats.f_bavail * stats.f_frsize
    if free < 1024:
        return f"{free} bytes"
    units = ("KiB", "MiB", "GiB", "TiB")
    power = min(len(units), (free.bit_length() - 1) // 10)
    return f"{free / 1024**power:.1f} {units[power - 1]}"
