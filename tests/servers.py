"""Real servers for the tests: ``redis-server`` and a throwaway PostgreSQL cluster.

Each server listens on a free port of 127.0.0.1 only and keeps its files in a
temporary directory of its own. ``start()`` after ``kill()``/``stop()`` brings it
back on the same port (and, for PostgreSQL, the same data directory); ``close()``
stops it and removes its files. Every server still alive when the interpreter
exits is closed by an ``atexit`` fallback, so none outlives the test session when
a fixture finalizer did not run.

No pytest here: the fixtures in ``tests/server_fixtures.py`` wrap these classes.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import io
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "ServerMissing",
    "free_port",
]

LOOPBACK = "127.0.0.1"

REDIS_INSTALL_HINT = (
    "redis-server not found: install it with `apt-get install redis-server` "
    "(or run `bash scripts/setup`)"
)
POSTGRES_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found: install them "
    "with `apt-get install postgresql` (or run `bash scripts/setup`)"
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PORT_IN_USE = ("Address already in use", "could not bind", "could not create any TCP/IP")


class ServerMissing(RuntimeError):
    """A server binary is not installed; the message says how to install it."""


class ServerError(RuntimeError):
    """A server failed to start or stop; the message carries the tail of its log."""


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


# --------------------------------------------------------------------------- cleanup

_live: set[RedisServer | PostgresServer] = set()
_live_lock = threading.Lock()
_atexit_registered = False


def _track(server: RedisServer | PostgresServer) -> None:
    global _atexit_registered
    with _live_lock:
        _live.add(server)
        if not _atexit_registered:
            atexit.register(_close_all)
            _atexit_registered = True


def _untrack(server: RedisServer | PostgresServer) -> None:
    with _live_lock:
        _live.discard(server)


def _close_all() -> None:
    """The ``atexit`` fallback: close every server a finalizer left behind."""
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            if isinstance(server, PostgresServer):
                server.stop(mode="immediate")
            server.close()


# --------------------------------------------------------------------------- redis


def _resp_encode(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _redis_call(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one command over a fresh connection; return the reply payload.

    Understands simple strings, errors (raised as ``ServerError``), integers and
    bulk strings: all the replies the commands used here give.
    """
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(_resp_encode(*args))
        buf = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection without a reply")
            buf += chunk
            if b"\r\n" not in buf:
                continue
            head, _, rest = buf.partition(b"\r\n")
            kind, body = head[:1], head[1:]
            if kind in (b"+", b":"):
                return body
            if kind == b"-":
                raise ServerError(f"redis error: {body.decode(errors='replace')}")
            if kind == b"$":
                size = int(body)
                if size < 0:
                    return b""
                if len(rest) >= size + 2:
                    return rest[:size]
                continue
            raise ServerError(f"unexpected redis reply: {buf[:80]!r}")


class _Managed:
    """``with Server() as s``: started on entry (closed again if that fails), closed on exit.
    A server process on loopback: its port (known once started), pid and state."""

    #: How errors name the server ("the redis server").
    label: ClassVar[str]
    _port: int | None
    _proc: subprocess.Popen[bytes] | None

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError(f"{self.label} has not been started yet")
        return self._port

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisServer(_Managed):
    """A private ``redis-server`` on 127.0.0.1 without persistence.

    ``--save "" --appendonly no``: nothing is written to disk, so a server that was
    killed and started again is empty.
    """

    label = "the redis server"

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        found = binary if binary is not None else shutil.which("redis-server")
        if found is None or not os.access(found, os.X_OK):
            raise ServerMissing(REDIS_INSTALL_HINT)
        self.binary: str = found
        self.startup_timeout = startup_timeout
        self._port: int | None = port
        self._fixed_port = port is not None
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: io.BufferedWriter | None = None

    # -- addresses
    def url_for(self, db: int = 0) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{db}"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return self.url_for(0)

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise ServerError(f"{self.label} has not been started yet")
        return self._dir

    # -- lifecycle
    def start(self) -> Self:
        """Start the server (again on the same port) and wait until it answers PING.

        Does nothing when it is already running.
        """
        if self.running:
            return self
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="jl-redis-"))
        _track(self)
        attempts = 1 if self._fixed_port else 5
        last: ServerError | None = None
        for _ in range(attempts):
            if self._port is None:
                self._port = free_port()
            try:
                self._launch()
                self._fixed_port = True  # later starts reuse this port
                return self
            except ServerError as exc:
                last = exc
                if not self._fixed_port:
                    self._port = None  # someone took the port: try another
        assert last is not None
        raise last

    def _launch(self) -> None:
        port = self.port
        log_path = self.directory / "redis.log"
        self._close_log()
        self._log = log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                "--logfile",
                "",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.002
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise ServerError(
                    f"redis-server on port {port} exited with {code}:\n{_log_tail(log_path)}"
                )
            with contextlib.suppress(OSError, ServerError):
                if _redis_call(port, "PING", timeout=0.5) == b"PONG":
                    break
            if time.monotonic() > deadline:
                self._terminate()
                raise ServerError(
                    f"redis-server on port {port} did not answer PING within "
                    f"{self.startup_timeout}s:\n{_log_tail(log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        # Something else may have been listening on the port already; make sure the
        # server that answers is ours.
        info = _redis_call(port, "INFO", "server").decode(errors="replace")
        if f"process_id:{self._proc.pid}\r\n" not in info:
            self._terminate()
            raise ServerError(f"port {port} is served by another redis-server")

    def kill(self) -> None:
        """SIGKILL the server and wait for it to exit (its data is gone)."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        self._proc = None
        self._close_log()

    def stop(self, timeout: float = 10.0) -> None:
        """``SHUTDOWN NOSAVE``, or SIGTERM (and at last SIGKILL), then wait for exit."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(OSError, ServerError):
                _redis_call(self.port, "SHUTDOWN", "NOSAVE", timeout=timeout)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._terminate(timeout)
        self._proc = None
        self._close_log()

    def _terminate(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the server and remove its directory; it cannot be started again."""
        try:
            self.stop()
        finally:
            self._terminate()
            self._close_log()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
            _untrack(self)

    # -- helpers for fixtures
    def ping(self) -> bool:
        try:
            return _redis_call(self.port, "PING") == b"PONG"
        except (OSError, ServerError):
            return False

    def flushall(self) -> None:
        """Remove every key of every logical database."""
        _redis_call(self.port, "FLUSHALL", "SYNC")

    def __repr__(self) -> str:
        return f"RedisServer(port={self._port}, running={self.running})"


# --------------------------------------------------------------------------- postgres

_PG_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres", "psql")
# The signal ``pg_ctl stop -m <mode>`` sends to the postmaster.
_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def _has_pg_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _PG_SERVER_BINARIES)


def find_postgres_bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl``/``postgres``/``psql``.

    Looks at ``pg_config --bindir``, then ``/usr/lib/postgresql/<newest>/bin``, then
    ``PATH``; raises ``ServerMissing`` when none has them all.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)

    candidates.extend(
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    )
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if _has_pg_binaries(candidate):
            return candidate
    raise ServerMissing(POSTGRES_INSTALL_HINT)


class PostgresServer(_Managed):
    """A throwaway PostgreSQL cluster on 127.0.0.1, trust authentication.

    ``initdb`` runs on the first ``start()``; later starts reuse the data directory
    and the port. When the tests run as root, ``initdb``/``pg_ctl``/``postgres`` run
    as the ``postgres`` OS user (they refuse root) and the cluster directory belongs
    to that user. Connect as the database user ``postgres`` without a password.

    The postmaster is started as a child of this process (``postgres -D ...``, what
    ``pg_ctl start`` would run) rather than through ``pg_ctl start``: ``pg_ctl``
    daemonizes it, and an orphaned postmaster becomes an unreaped zombie on machines
    whose PID 1 does not reap (this one's). ``stop()`` is ``pg_ctl stop -m <mode>``.

    ``fsync=off`` and ``full_page_writes=off`` keep it fast; commits stay
    synchronous (``synchronous_commit`` is left on, cheap without fsync) so that a
    transaction committed before ``stop(mode="immediate")`` is there after ``start()``.
    """

    label = "the PostgreSQL server"
    superuser = "postgres"

    def __init__(
        self,
        port: int | None = None,
        *,
        bindir: str | os.PathLike[str] | None = None,
        os_user: str = "postgres",
        startup_timeout: float = 60.0,
    ) -> None:
        if bindir is None:
            self.bindir = find_postgres_bindir()
        else:
            self.bindir = Path(bindir)
            if not _has_pg_binaries(self.bindir):
                raise ServerMissing(POSTGRES_INSTALL_HINT)
        self.startup_timeout = startup_timeout
        self._uid: int | None = None
        self._gid: int | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(os_user)
            except KeyError:
                raise ServerMissing(
                    f"PostgreSQL refuses to run as root and the OS user {os_user!r} does not "
                    "exist: install PostgreSQL with `apt-get install postgresql` (it creates "
                    "the user) or run `bash scripts/setup`"
                ) from None
            self._uid, self._gid = entry.pw_uid, entry.pw_gid
        self._port: int | None = port
        self._fixed_port = port is not None
        self._base: Path | None = None
        self._initialized = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: io.BufferedWriter | None = None

    # -- paths and addresses
    @property
    def base_dir(self) -> Path:
        if self._base is None:
            raise ServerError(f"{self.label} has not been started yet")
        return self._base

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    def url(self, dbname: str = "postgres", driver: str | None = "asyncpg") -> str:
        """``postgresql+asyncpg://postgres@127.0.0.1:<port>/<dbname>``.

        ``driver=None`` gives a plain ``postgresql://`` URL (libpq, psql).
        """
        scheme = "postgresql" if not driver else f"postgresql+{driver}"
        return f"{scheme}://{self.superuser}@{LOOPBACK}:{self.port}/{dbname}"

    # -- running the binaries
    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    def _env(self) -> dict[str, str]:
        # No PG* variable of the caller (PGHOST, PGSERVICE, ...) may redirect us.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "5"
        env["LC_ALL"] = "C"
        if self._uid is not None:
            env["HOME"] = str(self.base_dir)
            env["USER"] = env["LOGNAME"] = pwd.getpwuid(self._uid).pw_name
        return env

    def _run_as_owner(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the cluster's owner (``postgres`` when we are root)."""
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=self.base_dir,
            env=self._env(),
            check=False,
            **self._owner_kwargs(),
        )

    def psql(self, sql: str, dbname: str = "postgres", timeout: float = 30.0) -> str:
        """Run SQL through ``psql`` over TCP; return its unaligned, tuples-only output."""
        proc = subprocess.run(
            [
                self._bin("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                "-d",
                dbname,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=self._env(),
            check=False,
        )
        if proc.returncode != 0:
            raise ServerError(f"psql failed ({proc.returncode}) running {sql!r}: {proc.stderr}")
        return proc.stdout

    @staticmethod
    def _identifier(name: str) -> str:
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
        return f'"{name}"'

    def create_database(self, name: str) -> str:
        """Create the database ``name`` and return its asyncpg URL."""
        self.psql(f"CREATE DATABASE {self._identifier(name)}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, ending the sessions still connected to it."""
        self.psql(f"DROP DATABASE IF EXISTS {self._identifier(name)} WITH (FORCE)")

    # -- lifecycle
    def _initdb(self) -> None:
        self._base = Path(tempfile.mkdtemp(prefix="jl-pg-"))
        _track(self)
        self.socket_dir.mkdir()
        if self._uid is not None and self._gid is not None:
            for path in (self._base, self.socket_dir):
                os.chown(path, self._uid, self._gid)
        proc = self._run_as_owner(
            [
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                self.superuser,
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            timeout=self.startup_timeout,
        )
        if proc.returncode != 0:
            raise ServerError(f"initdb failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        self._initialized = True

    def _owner_kwargs(self) -> dict[str, Any]:
        if self._uid is None:
            return {}
        return {"user": self._uid, "group": self._gid, "extra_groups": []}

    def _ready(self, pid: int) -> bool:
        """Whether ``postmaster.pid`` says our postmaster accepts connections.

        The same check as ``pg_ctl start -w``: line 1 is the pid, line 8 the status.
        """
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"

    def _launch(self) -> None:
        port = self.port
        self._close_log()
        self._log = self.log_path.open("ab")
        proc = subprocess.Popen(
            [
                self._bin("postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(port),
                "-k",
                str(self.socket_dir),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.base_dir,
            env=self._env(),
            **self._owner_kwargs(),
        )
        self._proc = proc
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        while not self._ready(proc.pid):
            if proc.poll() is not None:
                self._proc = None
                raise ServerError(
                    f"postgres on port {port} exited with {proc.returncode}:\n"
                    f"{_log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self._signal_stop(signal.SIGQUIT, 10.0)
                raise ServerError(
                    f"postgres on port {port} was not ready within {self.startup_timeout}s:\n"
                    f"{_log_tail(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def start(self) -> Self:
        """initdb (first time only), then start on the same port and data directory.

        Returns once the server accepts connections; does nothing when it is running.
        """
        if self.running:
            return self
        if not self._initialized:
            self._initdb()
        attempts = 1 if self._fixed_port else 5
        last: ServerError | None = None
        for _ in range(attempts):
            if self._port is None:
                self._port = free_port()
            try:
                self._launch()
                self._fixed_port = True
                return self
            except ServerError as exc:
                last = exc
                taken = any(marker in str(exc) for marker in _PORT_IN_USE)
                if self._fixed_port or not taken:
                    raise
                self._port = None
        assert last is not None
        raise last

    def _signal_stop(self, signum: signal.Signals, timeout: float) -> None:
        """Stop the postmaster with a signal (SIGKILL when it does not exit in time)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signum)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        self._close_log()

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """``pg_ctl stop -m <mode>``: ``smart``, ``fast`` or ``immediate`` (a crash).

        Waits until the postmaster has exited. Does nothing when it is not running.
        """
        signum = _STOP_SIGNALS.get(mode)
        if signum is None:
            raise ValueError(f"unknown pg_ctl stop mode: {mode!r}")
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            # pg_ctl signals the postmaster and returns (-W); we wait for our child
            # ourselves, which sees its exit at once (pg_ctl -w polls every 100 ms).
            try:
                sent = self._run_as_owner(
                    [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-W", "stop"],
                    timeout=30.0,
                )
                signalled = sent.returncode == 0
            except (OSError, subprocess.SubprocessError):
                signalled = False
            if not signalled and proc.poll() is None:
                proc.send_signal(signum)  # what pg_ctl would have sent
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_stop(signal.SIGQUIT, 10.0)  # immediate, then SIGKILL
        self._proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the cluster and remove its directory; it cannot be started again."""
        try:
            self.stop(mode="fast", timeout=30.0)
        finally:
            self._signal_stop(signal.SIGQUIT, 10.0)
            self._close_log()
            self._initialized = False
            if self._base is not None:
                shutil.rmtree(self._base, ignore_errors=True)
                self._base = None
            _untrack(self)

    def __repr__(self) -> str:
        return f"PostgresServer(port={self._port}, running={self.running})"
