"""Fixtures for tests that load third-party plugins or run the ``jaseci-like`` command.

Registered by the test modules that need them with ``pytest_plugins``. Those
modules also import its helpers first, too early for pytest's assert rewriting;
it has no asserts to rewrite, so it says so: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import importlib
import os
import queue
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests import plugin_dist

#: Generous bound for a command to answer; a safety net, not a measurement.
ANSWER_TIMEOUT = 60.0
#: The spec's bound from SIGINT/SIGTERM to exit.
STOP_BOUND = 2.0
#: Top-level modules of the test plugins, forgotten after each in-process test.
PLUGIN_MODULE_PREFIX = "jl_"


@dataclass(frozen=True)
class PluginSites:
    """Directories, each a ``pip install --target`` of some test plugin distributions."""

    good: Path
    broken: Path
    orphan: Path


@pytest.fixture(scope="session")
def plugin_sites(tmp_path_factory: pytest.TempPathFactory) -> PluginSites:
    """The test plugin distributions, built and installed once per session."""
    root = tmp_path_factory.mktemp("plugin-dists")
    return PluginSites(
        good=plugin_dist.build_site(root / "good", [plugin_dist.good_plugin()]),
        broken=plugin_dist.build_site(root / "broken", plugin_dist.broken_plugins()),
        orphan=plugin_dist.build_site(root / "orphan", [plugin_dist.orphan_plugin()]),
    )


@contextmanager
def on_sys_path(*sites: Path) -> Iterator[None]:
    """``sites`` importable (and their entry points visible) in this process, then not."""
    saved = list(sys.path)
    sys.path[:0] = [str(s) for s in sites]
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path[:] = saved
        for name in [m for m in sys.modules if m.startswith(PLUGIN_MODULE_PREFIX)]:
            del sys.modules[name]
        importlib.invalidate_caches()


@pytest.fixture
def good_plugin(plugin_sites: PluginSites) -> Iterator[Path]:
    """The good plugin importable in this process for one test."""
    with on_sys_path(plugin_sites.good):
        yield plugin_sites.good


@pytest.fixture
def all_plugins(plugin_sites: PluginSites) -> Iterator[PluginSites]:
    """The good plugin and every broken one importable in this process for one test."""
    with on_sys_path(plugin_sites.good, plugin_sites.broken):
        yield plugin_sites


# -- the command line ---------------------------------------------------------------------


def console_script() -> Path:
    """The installed ``jaseci-like`` script of the interpreter running the tests."""
    candidates = [
        Path(sys.executable).parent / "jaseci-like",
        Path(sysconfig.get_path("scripts")) / "jaseci-like",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise AssertionError(
        f"no jaseci-like console script next to {sys.executable}; install the project "
        "with `pip install -e '.[test]'` into the interpreter that runs pytest"
    )


def _reader(stream: IO[str], lines: list[str], out: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.append(line)
        out.put(line)
    out.put(None)


@dataclass
class Served:
    """A ``jaseci-like`` process whose output is read line by line by two threads."""

    proc: subprocess.Popen[str]
    stdout_lines: list[str] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)
    _out: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _err: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.proc.stdout is None or self.proc.stderr is None:
            raise ValueError("Served needs a process started with stdout and stderr piped")
        for stream, lines, q in (
            (self.proc.stdout, self.stdout_lines, self._out),
            (self.proc.stderr, self.stderr_lines, self._err),
        ):
            thread = threading.Thread(target=_reader, args=(stream, lines, q), daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_for_line(self, prefix: str, timeout: float = ANSWER_TIMEOUT) -> list[str]:
        """Stdout lines up to and including the first that starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._out.get(timeout=max(0.0, left))
            except queue.Empty:
                self.kill()
                raise AssertionError(
                    f"no stdout line starting with {prefix!r} within {timeout}s\n{self.describe()}"
                ) from None
            if line is None:
                self.finish()
                raise AssertionError(
                    f"exited ({self.proc.returncode}) before a line starting with {prefix!r}\n"
                    f"{self.describe()}"
                )
            seen.append(line)
            if line.startswith(prefix):
                return seen

    def signal_and_wait(self, sig: signal.Signals, timeout: float = ANSWER_TIMEOUT) -> float:
        """Send ``sig`` and wait for the exit; returns the seconds from signal to exit."""
        began = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"still running {timeout}s after {sig.name}\n{self.describe()}"
            ) from None
        took = time.monotonic() - began
        self.finish()
        return took

    def finish(self) -> None:
        """Wait for the exit and for every line of output."""
        self.proc.wait(timeout=ANSWER_TIMEOUT)
        for thread in self._threads:
            thread.join(timeout=ANSWER_TIMEOUT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()

    @property
    def stdout(self) -> str:
        return "".join(self.stdout_lines)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def describe(self) -> str:
        return f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"


@dataclass(frozen=True)
class Cli:
    """Runs the real console script with a clean environment in a scratch directory."""

    script: Path
    cwd: Path
    base_env: Mapping[str, str]

    def environ(
        self, env: Mapping[str, str] | None = None, sites: Sequence[Path] = ()
    ) -> dict[str, str]:
        out = dict(self.base_env)
        if sites:
            out["PYTHONPATH"] = os.pathsep.join(str(s) for s in sites)
        out.update(env or {})
        return out

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        sites: Sequence[Path] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to its end."""
        return subprocess.run(
            [str(self.script), *args],
            cwd=self.cwd,
            env=self.environ(env, sites),
            capture_output=True,
            text=True,
            timeout=ANSWER_TIMEOUT,
            check=False,
        )

    @contextmanager
    def serve(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        sites: Sequence[Path] = (),
    ) -> Iterator[Served]:
        """Start a long-running command; it is killed afterwards if still running."""
        proc = subprocess.Popen(
            [str(self.script), *args],
            cwd=self.cwd,
            env=self.environ(env, sites),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        served = Served(proc)
        try:
            yield served
        finally:
            served.kill()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The ``jaseci-like`` command; no JASECI_LIKE* variable or PYTHONPATH is inherited."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE") and k != "PYTHONPATH"
    }
    # Each test its own data dir: the embedded config store must not leak between tests.
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    return Cli(console_script(), workdir, env)


def parse_table(lines: Sequence[str]) -> list[dict[str, str]]:
    """The rows of the first table in ``lines`` (an upper-case header, columns aligned).

    The table ends at an empty line or at the ``ready:`` line of ``up``.
    """
    rows: list[dict[str, str]] = []
    columns: list[tuple[str, int]] = []
    for raw in lines:
        line = raw.rstrip("\n")
        words = line.split()
        if not columns:
            if len(words) >= 2 and all(w.isupper() for w in words):
                columns = [(w, line.index(w)) for w in words]
            continue
        if not words or line.startswith("ready:"):
            break
        ends = [start for _, start in columns[1:]] + [len(line)]
        rows.append(
            {
                name: line[start:end].strip()
                for (name, start), end in zip(columns, ends, strict=True)
            }
        )
    return rows


#: For a command or runtime that starts the built-in api: a free port, as the
#: default (8000) is one per machine and tests run at once. Only where the api
#: plugin loads: a setting for a section no service has is refused.
FREE_API_PORT = {"JASECI_LIKE__API__PORT": "0"}


def marker_env(markers: Path, *services: str) -> dict[str, str]:
    """Environment that makes the demo services write their marker files into ``markers``."""
    markers.mkdir(parents=True, exist_ok=True)
    return {f"JASECI_LIKE__{s.upper()}__MARKER_DIR": str(markers) for s in services}
