"""Creating the engine: SQLite with serialized writers (and a reader for its reads, run
on the loop), or PostgreSQL (its change stamp from LISTEN/NOTIFY, see notify.py)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from jaseci_like_services.db.notify import NotifyStamp
from jaseci_like_services.db.storage import folder_error, storage_error
from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from jaseci_like import ConfigError
from jaseci_like.config.secrets import redact_url
from jaseci_like.repository import (
    ReaderBusy,
    one_statement,
    serialize_writes,
    use_change_stamp,
    use_driver_reads,
    use_reader,
)

SQLITE_FILE = "jaseci_like.db"


def data_dir(configured: str | None) -> Path:
    """The configured data directory, or $XDG_DATA_HOME/jaseci-like (~/.local/share)."""
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(base).expanduser() / "jaseci-like"


def database_url(configured: str | None, directory: Path) -> URL:
    """The URL to connect to; the SQLite file's folder is created on first use
    (:class:`DatabaseStorageError` naming the folder and the reason if it cannot be)."""
    if not configured:
        _make_folder(directory, directory / SQLITE_FILE)
        return URL.create("sqlite+aiosqlite", database=str(directory / SQLITE_FILE))
    try:
        url = make_url(configured)
    except ArgumentError:
        raise ConfigError(
            f"db.url = {_shown(configured)!r}: not an SQLAlchemy URL "
            "(e.g. postgresql+asyncpg://user@host/name or sqlite+aiosqlite:///path)"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database).expanduser()
        _make_folder(path.parent, path)
    return url


def _make_folder(directory: Path, database: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise folder_error(directory, exc, database.absolute()) from None


def _shown(url: str) -> str:
    """``url`` safe to print even when it is too malformed to parse (``postgresql//u:pw@h``):
    then everything before its last ``@`` is hidden, password included."""
    redacted = redact_url(url)
    if redacted == url and "@" in url:
        return "***@" + url.rsplit("@", 1)[1]
    return redacted


#: Seconds a pooled connection may sit unused before its next checkout pings it.
PING_IDLE_AFTER = 2.0


def create_engine(
    url: URL,
    *,
    echo: bool,
    pool_size: int,
    busy_timeout_ms: int,
    connect_timeout: float = 5.0,
    pool_timeout: float = 5.0,
    ping_idle_after: float = PING_IDLE_AFTER,
) -> AsyncEngine:
    """The engine of ``url``. A server that is down fails a call within about
    ``connect_timeout`` (a new connection) or ``pool_timeout`` (waiting for a pooled
    one) seconds instead of stalling.

    A pooled connection is pinged at checkout only when it sat unused for
    ``ping_idle_after`` seconds: a busy one costs no round trip. One that broke
    while in use (a server restart) fails its statement with a lost connection,
    which invalidates the whole pool, and the repositories' retry runs the work
    again on a new connection (see ``jaseci_like.repository.Resilience``).
    """
    if url.get_backend_name() != "sqlite":
        connect_args = {"timeout": connect_timeout} if url.get_driver_name() == "asyncpg" else {}
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            pool_timeout=pool_timeout,
            connect_args=connect_args,
        )
        _ping_after_idle(engine.sync_engine, ping_idle_after)
        if url.get_driver_name() == "asyncpg":
            use_change_stamp(engine, NotifyStamp(engine))
            use_driver_reads(engine)
        return engine
    engine = create_async_engine(url, echo=echo)
    _serialize_sqlite_writers(engine, busy_timeout_ms)
    if _is_file(url):
        reader = _sqlite_reader(url, echo=echo, pool_size=pool_size)
        assert url.database is not None
        path = Path(url.database).expanduser().absolute()
        _name_storage_errors(engine.sync_engine, path)
        _name_storage_errors(reader, path)
        use_reader(engine, reader, DataVersion(url.database))
        # Writers of this process queue for the file instead of polling its lock.
        serialize_writes(engine, stall=busy_timeout_ms / 1000)
    return engine


def _ping_after_idle(engine: Engine, seconds: float) -> None:
    """Ping a pooled connection at checkout if it sat unused ``seconds`` or more (0:
    at every checkout); a dead one invalidates the pool and is replaced at once."""
    idle_since = "jaseci_like_idle_since"

    @event.listens_for(engine, "checkin")
    def on_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[idle_since] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        since = record.info.pop(idle_since, None)
        if since is None or time.monotonic() - since < seconds:
            return  # new, or in use a moment ago
        dialect = engine.dialect
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if not dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            # The pool replaces this connection, and the ones as old (a restart broke them all).
            raise InvalidatePoolError("a pooled connection did not answer its ping")


def _name_storage_errors(engine: Engine, path: Path) -> None:
    """SQLite's errors about the file or its disk ("unable to open database file",
    "database or disk is full") raised as :class:`DatabaseStorageError`, naming the
    file and the operating system's reason."""

    @event.listens_for(engine, "handle_error")
    def on_error(context: ExceptionContext) -> BaseException | None:
        return storage_error(context.original_exception, path)


def _is_file(url: URL) -> bool:
    """An SQLite database in a file: another connection opening it sees the same data."""
    memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    return not memory


#: Execution option of ``DbService.reader``: its transactions only read.
READ_ONLY = "jaseci_like_read_only"


def _serialize_sqlite_writers(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """Every transaction opens with BEGIN IMMEDIATE, so read-modify-write ones are
    serialized by SQLite's write lock instead of failing on upgrade (the pysqlite
    driver's own BEGIN handling is turned off for that). A connection of the
    ``READ_ONLY`` view (``DbService.reader``) opens no transaction at all: each of
    its statements reads the last commit on its own (SQLite's autocommit), neither
    waiting for nor holding up a writer, at one trip to the driver's thread."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The timeout first: switching to WAL waits for a lock another connection may hold.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        if not conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


#: Reads a page of the database: the snapshot of a read transaction is taken here.
_SNAPSHOT = "SELECT 1 FROM sqlite_schema LIMIT 1"
_WAITS = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _never_wait_never_write(conn: sqlite3.Connection) -> None:
    """A connection that reads on the loop: a lock is answered at once (SQLITE_BUSY),
    and a write is refused."""
    conn.execute("PRAGMA busy_timeout=0")
    conn.execute("PRAGMA query_only=ON")


def _sqlite_reader(url: URL, *, echo: bool, pool_size: int) -> Engine:
    """A synchronous pysqlite engine on the same file, for reads run on the event loop
    (see ``jaseci_like.repository.use_reader``).

    It never waits: its busy timeout is 0, and its transaction takes the read
    snapshot at BEGIN, so the rare moment a WAL read would wait (another connection
    recovering or closing the WAL) raises ``ReaderBusy`` there and the read goes
    through aiosqlite, whose thread may wait. A read of one statement opens no
    transaction (``DbOps.read_statement``): its statement raises ``ReaderBusy``
    instead. Its pool opens another connection rather than block a checkout.
    """
    reader = create_sync_engine(
        url.set(drivername="sqlite+pysqlite"),
        echo=echo,
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=-1,
    )

    @event.listens_for(reader, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the begin event below opens transactions
        _never_wait_never_write(dbapi_connection)

    @event.listens_for(reader, "begin")
    def on_begin(conn: Connection) -> None:
        if one_statement(conn):
            return  # the statement is its own transaction
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("BEGIN")
        try:
            raw.execute(_SNAPSHOT).close()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in _WAITS:
                raise ReaderBusy(str(exc)) from exc
            raise

    @event.listens_for(reader, "handle_error")
    def on_error(context: ExceptionContext) -> BaseException | None:
        code = getattr(context.original_exception, "sqlite_errorcode", None)
        return ReaderBusy(str(context.original_exception)) if code in _WAITS else None

    return reader


class DataVersion:
    """SQLite's ``PRAGMA data_version`` on a connection of its own: it changes whenever
    another connection, of this process or another, commits to the database (see
    ``DbOps.change_stamp``). About 2 microseconds; the connection opens on first use."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: tuple[sqlite3.Connection, int] | None = None
        self._generation = 0
        self._lock = threading.Lock()

    def __call__(self, channel: str | None = None) -> tuple[int, int] | None:
        """(connection generation, data_version): versions of two connections are not
        comparable, so a reopened connection never repeats an earlier stamp. Any
        commit moves it, whatever ``channel`` a cache names."""
        # One caller at a time, and the statement stepped to its end: a statement
        # left open keeps a read transaction, and its snapshot's version, alive.
        with self._lock:
            try:
                opened = self._conn if self._conn is not None else self._open()
                conn, generation = opened
                rows = conn.execute("PRAGMA data_version").fetchall()
            except sqlite3.Error:
                return None  # busy or closed: the caller reads the database instead
        return generation, int(rows[0][0])

    def _open(self) -> tuple[sqlite3.Connection, int]:
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        _never_wait_never_write(conn)
        self._generation += 1
        self._conn = (conn, self._generation)
        return self._conn

    def close(self) -> None:
        with self._lock:
            opened, self._conn = self._conn, None
        if opened is not None:
            opened[0].close()
