"""Config shared by real processes through Redis + PostgreSQL.

Each worker is ``python -m tests.procs.config_worker`` (see that module for its
line protocol): a full runtime with the ``probe`` plugin on the fixture servers.
The test never sleeps: it waits for answer lines, and the bounded waits for a
value to arrive run inside the workers, on the hook under test.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import make_url

from tests.procs import PROBE_GLOB
from tests.procs.config_worker import LEVEL_STRIDE
from tests.servers import PostgresServer, RedisServer
from tests.test_hooks import ONLY_OUR_PLUGINS

ROOT = Path(__file__).resolve().parent.parent
#: A safety net for one answer, not a measurement.
ANSWER_TIMEOUT = 60.0
#: How long a worker may take to see a change another process made (a generous bound).
SEE_TIMEOUT = 15.0
#: Stress rounds each worker completes in each phase (Redis up, killed, back).
ROUNDS_PER_PHASE = 25


class WorkerProc:
    """One worker process; its stdout is read line by line by a thread.

    Any ``error ...`` line fails the test at once: the worker reports every
    exception its runtime let through that way.
    """

    def __init__(self, worker_id: str, env: Mapping[str, str]) -> None:
        self.worker_id = worker_id
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.procs.config_worker", worker_id],
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.stderr: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.rstrip("\n")
            self.lines.append(line)
            if line.startswith("error"):
                self.errors.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr.append(raw)

    def describe(self) -> str:
        out = "\n".join(self.lines[-40:])
        err = "".join(self.stderr[-40:])
        return (
            f"worker {self.worker_id}\n--- stdout (tail) ---\n{out}\n--- stderr (tail) ---\n{err}"
        )

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str, timeout: float = ANSWER_TIMEOUT) -> str:
        """The next stdout line starting with ``prefix``; an error line fails the test."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no line starting with {prefix!r} within {timeout}s\n{self.describe()}"
                ) from None
            if line is None:
                self.proc.wait(timeout=ANSWER_TIMEOUT)
                raise AssertionError(
                    f"exited ({self.proc.returncode}) before a line starting with {prefix!r}\n"
                    f"{self.describe()}"
                )
            if line.startswith("error"):
                raise AssertionError(f"the worker reported an error: {line}\n{self.describe()}")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def ask(self, command: str, prefix: str, timeout: float = ANSWER_TIMEOUT) -> str:
        self.send(command)
        return self.expect(prefix, timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=ANSWER_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=ANSWER_TIMEOUT)


def worker_env(redis_url: str, postgres_url: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE") and k != "PYTHONPATH"
    }
    env.update(
        {
            **ONLY_OUR_PLUGINS,
            "JASECI_LIKE__DB__URL": postgres_url,
            "JASECI_LIKE__REDIS__ENABLED": "true",
            "JASECI_LIKE__REDIS__URL": redis_url,
        }
    )
    return env


@contextmanager
def workers(count: int, redis_url: str, postgres_url: str) -> Iterator[list[WorkerProc]]:
    """``count`` workers started together, each past ``ready``; all quit afterwards."""
    env = worker_env(redis_url, postgres_url)
    with ExitStack() as stack:
        procs = []
        for n in range(count):
            proc = WorkerProc(f"w{n}", env)
            stack.callback(proc.close)
            procs.append(proc)
        for proc in procs:
            proc.expect("ready")
        yield procs
        for proc in procs:
            assert not proc.errors, proc.describe()


def each(procs: list[WorkerProc], command: str, prefix: str) -> list[str]:
    """Send ``command`` to every worker first, then collect every answer."""
    for proc in procs:
        proc.send(command)
    return [proc.expect(prefix) for proc in procs]


def sql_rows(server: PostgresServer, postgres_url: str, where: str) -> dict[str, str]:
    """``name -> value`` of the globs table rows matching ``where``, read with psql."""
    database = make_url(postgres_url).database
    assert database is not None
    out = server.psql(
        f"SELECT json_build_object('name', name, 'value', value) FROM jaseci_like_globs "
        f"WHERE {where}",
        dbname=database,
    )
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {row["name"]: row["value"] for row in rows}


@pytest.mark.parametrize("count", [2, 4])
def test_config_set_in_one_process_is_seen_by_all(
    count: int, redis_url: str, postgres_url: str
) -> None:
    with workers(count, redis_url, postgres_url) as procs:
        assert each(procs, "get", "get ") == ["0"] * count
        assert procs[0].ask("set 7", "set ") == "7"
        assert each(procs, f"wait 7 {SEE_TIMEOUT}", "") == ["seen 7"] * count
        # ... and again from the last process, over the value every process now caches.
        assert procs[-1].ask("set 8", "set ") == "8"
        assert each(procs, f"wait 8 {SEE_TIMEOUT}", "") == ["seen 8"] * count


@pytest.mark.parametrize("count", [2, 4])
def test_broadcast_refresh_resets_the_service_in_every_process(
    count: int, redis_url: str, postgres_url: str
) -> None:
    with workers(count, redis_url, postgres_url) as procs:
        before = [int(n) for n in each(procs, "runs", "runs ")]
        assert all(n >= 1 for n in before)
        procs[0].ask("set 42", "set ")
        assert each(procs, f"wait 42 {SEE_TIMEOUT}", "") == ["seen 42"] * count
        # Stored, but the running services still have the config they started with.
        assert each(procs, "live", "live ") == ["0"] * count

        assert procs[-1].ask("refresh", "refreshed") == ""
        after = [
            int(proc.ask(f"waitruns {n + 1} {SEE_TIMEOUT}", "runs "))
            for proc, n in zip(procs, before, strict=True)
        ]
        assert after == [n + 1 for n in before], "each probe must run exactly once more"
        assert each(procs, "live", "live ") == ["42"] * count


def test_redis_killed_while_processes_read_and_write(
    redis_server_restartable: RedisServer,
    postgres_server: PostgresServer,
    postgres_url: str,
) -> None:
    server = redis_server_restartable
    count = 4
    with workers(count, server.url, postgres_url) as procs:
        assert each(procs, "stress", "stressing") == [""] * count
        each(procs, f"after {ROUNDS_PER_PHASE} up", "at up")

        server.kill()  # SIGKILL: every connection dies, its data is gone
        # Rounds a worker started after its ``after`` command all ran with Redis dead.
        down_at = [int(n) for n in each(procs, f"after {ROUNDS_PER_PHASE} down", "at down ")]

        server.start()  # the same port, empty
        each(procs, f"after {ROUNDS_PER_PHASE} back", "at back")
        rounds = [int(n) for n in each(procs, "stop", "stopped ")]
        assert all(n >= 3 * ROUNDS_PER_PHASE for n in rounds)

        # Every service runs again (the supervisor restarts redis after the outage).
        restarted = each(procs, f"waitstatus {SEE_TIMEOUT * 2}", "status ")
        for proc, status in zip(procs, restarted, strict=True):
            states = dict(pair.split("=", 1) for pair in status.split())
            running = {k: states.get(k) for k in ("db", "redis", "probe")}
            assert running == dict.fromkeys(running, "RUNNING"), proc.describe()
            assert "FAILED" not in states.values(), proc.describe()

        # No write is lost: every glob each worker saved is in SQL, with its value.
        stored = sql_rows(postgres_server, postgres_url, "name LIKE 'STRESS_%'")
        expected = {
            f"STRESS_{proc.worker_id}_{i}": {"worker": proc.worker_id, "round": i}
            for proc, n in zip(procs, rounds, strict=True)
            for i in range(n)
        }
        assert sorted(stored) == sorted(expected)
        assert {name: json.loads(text) for name, text in stored.items()} == expected

        # The last config_set that committed is in SQL: some worker's final round.
        (probe_text,) = sql_rows(postgres_server, postgres_url, f"name = '{PROBE_GLOB}'").values()
        level = json.loads(probe_text)["level"]
        finals = {
            int(proc.worker_id[1:]) * LEVEL_STRIDE + n - 1
            for proc, n in zip(procs, rounds, strict=True)
        }
        assert level in finals

        # Values converge: every process reads what SQL holds, with no new write to help,
        # and Redis holds no stale copy for a process that starts reading now.
        seen = each(procs, f"wait {level} {SEE_TIMEOUT}", "")
        client = redis.Redis.from_url(server.url)
        try:
            cached = client.hget("jaseci_like:globs", PROBE_GLOB)
        finally:
            client.close()
        cached_level = None if cached is None else json.loads(cached)["level"]
        assert seen == [f"seen {level}"] * count, (
            f"SQL holds level {level}, the Redis hash {cached_level}: the processes read "
            f"{seen} (a Redis copy older than SQL is the write-order race that "
            "tests/test_hooks.py::test_concurrent_writers_leave_the_cache_agreeing_with_sql "
            "shows deterministically)"
        )
        assert cached_level in (None, level)
        # A write made while Redis was dead is readable in every other process.
        name = f"STRESS_w0_{down_at[0] - 1}"
        for proc in procs[1:]:
            text = proc.ask(f"glob {name}", f"glob {name} ")
            assert json.loads(text) == expected[name]
