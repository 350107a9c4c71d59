"""Command-line figures: ``jaseci-like up`` until ready, and its exit on SIGTERM.

Each round spawns the real console script (the one next to ``sys.executable``)
and, alternately, a baseline interpreter that imports the same libraries, waits
for SIGTERM with a handler and exits 0. Both figures come from the same runs.

"The same libraries": the distributions the installed ``jaseci-like`` requires
(read from its metadata, so a new dependency joins by itself), and of those, every
module ``up`` really had loaded (recorded by an untimed probe run). Importing
only the top-level package would undercount a lazy one: ``import pydantic`` does
not load the machinery behind ``BaseModel``. The notes show the plain
``import pkg, ...`` figure too.

Bytecode: the children get a fresh ``PYTHONPYCACHEPREFIX`` and one untimed
warm-up run each, so both sides read compiled bytecode, as on a normal install.
(Without it, an environment with ``PYTHONDONTWRITEBYTECODE=1`` compiles every
module of the project from source on each start, while the libraries ship theirs.)
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.metadata import entry_points, packages_distributions, requires
from pathlib import Path

from benchmarks.registry import Context, Target, bench
from benchmarks.timing import median, spread

DIST = "jaseci-like"
SCRIPT = "jaseci-like"
READY = "ready:"
#: Seconds a child may take to become ready or to exit before it is killed.
CHILD_TIMEOUT = 60.0

# A process that loads ``modules``, says it is ready, and exits 0 on SIGTERM:
# the baseline for both figures. The handler is installed before anything else
# so a SIGTERM can never find the default action.
_IMPORTER = """\
import importlib, signal, sys, threading
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
failed = []
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name)
print("ready: imported", {count}, "failed", len(failed), *failed, flush=True)
stop.wait()
sys.exit(0)
"""

# The real console-script entry point, run so that the modules loaded by the
# time it exits are written to a file: what the runtime actually imports.
_PROBE = """\
import atexit, json, sys
from importlib.metadata import entry_points
@atexit.register
def dump():
    with open({out!r}, "w") as f:
        json.dump(sorted(sys.modules), f)
sys.argv = [{script!r}, "up"]
(script,) = entry_points(group="console_scripts", name={script!r})
sys.exit(script.load()())
"""


@dataclass(frozen=True)
class Run:
    """One child process: spawn -> ready line -> SIGTERM -> exit."""

    ready_ms: float
    exit_s: float
    returncode: int
    ready_line: str
    after: str


def _canonical(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def dependency_packages() -> list[str]:
    """Top-level import names of the distributions the runtime requires (extras excluded).

    Read from the installed distribution's metadata, so a dependency added to
    pyproject.toml joins the baseline without editing this file.
    """
    wanted = set()
    for requirement in requires(DIST) or []:
        spec, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if found:
            wanted.add(_canonical(found.group(1)))
    return sorted(
        top
        for top, dists in packages_distributions().items()
        if any(_canonical(d) in wanted for d in dists)
    )


def console_script() -> Path:
    path = Path(sys.executable).parent / SCRIPT
    if not path.exists():
        raise RuntimeError(f"{path} not found: install the project first (pip install -e .)")
    return path


def _child_env(tmp: str) -> dict[str, str]:
    # The embedded default: no user config, profile or override from this shell,
    # and a data directory of its own (the user's stored values stay out of it;
    # the untimed probe run creates the store, so timed runs find it, as usual).
    env = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    env["XDG_DATA_HOME"] = os.path.join(tmp, "data")
    env["JASECI_LIKE__API__PORT"] = "0"  # a free port: 8000 may be taken on this machine
    return env


def spawn_and_term(argv: list[str], env: dict[str, str], cwd: str) -> Run:
    """Spawn ``argv``, time it until it prints a ``ready:`` line, SIGTERM it, time its exit."""
    with tempfile.TemporaryFile("w+") as errors:
        began = time.perf_counter_ns()
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=cwd, text=True
        )
        watchdog = threading.Timer(CHILD_TIMEOUT, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            ready_line = ""
            ready = 0
            for line in proc.stdout:
                if line.startswith(READY):
                    ready, ready_line = time.perf_counter_ns(), line.strip()
                    break
            if not ready:
                proc.wait()
                errors.seek(0)
                tail = errors.read()[-2000:]
                raise RuntimeError(
                    f"{Path(argv[0]).name} exited with {proc.returncode} before printing "
                    f"{READY!r}; its stderr ends:\n{tail}"
                )
            termed = time.perf_counter_ns()
            proc.send_signal(signal.SIGTERM)
            after = proc.stdout.read()
            proc.wait()
            gone = time.perf_counter_ns()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Run((ready - began) / 1e6, (gone - termed) / 1e9, proc.returncode, ready_line, after)


@dataclass(frozen=True)
class Lifecycle:
    """Every run of this session's CLI measurement, shared by both figures."""

    ours: list[Run]
    baseline: list[Run]
    top_level: list[Run]
    cli_import: list[Run]
    libraries: list[str]
    modules: int


@functools.cache
def lifecycle(rounds: int) -> Lifecycle:
    """Run every kind of child ``rounds`` times, interleaved; once per session."""
    script = str(console_script())
    tops = dependency_packages()
    (entry,) = entry_points(group="console_scripts", name=SCRIPT)
    with tempfile.TemporaryDirectory(prefix="jl-bench-") as tmp:
        env = _child_env(tmp)
        cwd = os.path.join(tmp, "cwd")
        os.mkdir(cwd)
        python = sys.executable

        # Untimed warm-up that also records what the runtime really loads.
        listing = os.path.join(tmp, "modules.json")
        probe = _PROBE.format(out=listing, script=SCRIPT)
        spawn_and_term([python, "-c", probe], env, cwd)
        with open(listing) as f:
            loaded: list[str] = json.load(f)
        modules = [m for m in loaded if m.partition(".")[0] in tops]

        def importer(names: list[str]) -> list[str]:
            return [python, "-c", _IMPORTER.format(modules=names, count=len(names))]

        # Baseline: the libraries' modules the runtime loaded (see the docstring).
        kinds = {
            "ours": [script, "up"],
            "baseline": importer(modules),
            # Diagnostics for the notes: `import pkg` of each library only, and the
            # console script's module imported without running anything.
            "top_level": importer([t for t in tops if not t.startswith("_")]),
            "cli_import": importer([entry.module]),
        }
        for argv in kinds.values():
            spawn_and_term(argv, env, cwd)  # warm-up: bytecode into the fresh cache
        runs: dict[str, list[Run]] = {kind: [] for kind in kinds}
        for n in range(rounds):
            order = list(kinds) if n % 2 == 0 else list(reversed(kinds))
            for kind in order:
                runs[kind].append(spawn_and_term(kinds[kind], env, cwd))
    return Lifecycle(
        runs["ours"],
        runs["baseline"],
        runs["top_level"],
        runs["cli_import"],
        [t for t in tops if not t.startswith("_")],
        len(modules),
    )


@bench("cli.up_ready", unit="ms", better="lower", target=Target("ratio", "<=", 1.5))
def up_ready(ctx: Context) -> tuple[float, float]:
    """Spawn of ``jaseci-like up`` until its ``ready:`` line vs a fresh interpreter
    importing the same libraries until it prints its own ``ready:`` line (median)."""
    life = lifecycle(ctx.rounds(7))
    ours = [r.ready_ms for r in life.ours]
    base = [r.ready_ms for r in life.baseline]
    failed = {r.ready_line for r in life.baseline if " failed 0" not in r.ready_line}
    if failed:
        ctx.problem(f"baseline could not import every module: {failed}")
    ctx.note(f"ours: {life.ours[-1].ready_line!r}; rounds {spread(ours)} ms")
    ctx.note(
        f"baseline: {life.modules} modules of {', '.join(life.libraries)} that `up` loaded; "
        f"rounds {spread(base)} ms"
    )
    top_level = median([r.ready_ms for r in life.top_level])
    ctx.note(
        f"for scale: `import {', '.join(life.libraries)}` alone {top_level:.1f} ms "
        f"(ours / that = {median(ours) / top_level:.2f}); importing the CLI module "
        f"without running it {median([r.ready_ms for r in life.cli_import]):.1f} ms"
    )
    return median(ours), median(base)


@bench("cli.sigterm_exit", unit="s", better="lower", target=Target("value", "<", 2.0))
def sigterm_exit(ctx: Context) -> tuple[float, float]:
    """SIGTERM to process exit of ``jaseci-like up``, once ready (median).

    Baseline: the importer above (the same libraries loaded) exiting 0 on SIGTERM
    through a handler and an Event, i.e. a graceful exit with nothing to stop.
    """
    life = lifecycle(ctx.rounds(7))
    codes = [r.returncode for r in life.ours]
    if any(codes):
        ctx.problem(f"`up` exit codes after SIGTERM: {codes} (0 expected)")
    else:
        ctx.note(f"`up` exited 0 in all {len(codes)} rounds (so no service was left running)")
    stopped = [m.group(1) for r in life.ours if (m := re.search(r"stopped in (\S+)", r.after))]
    if stopped:
        ctx.note(f"`up` reported 'stopped in' {', '.join(stopped)}")
    ours = [r.exit_s for r in life.ours]
    base = [r.exit_s for r in life.baseline]
    base_codes = {r.returncode for r in life.baseline}
    if base_codes != {0}:
        ctx.problem(f"baseline exit codes {sorted(base_codes)} (0 expected)")
    ctx.note(f"rounds {spread(ours)} s, baseline {spread(base)} s")
    return median(ours), median(base)
