"""A worker process for the multi-process config tests.

Run as ``python -m tests.procs.config_worker <worker-id>`` from the repository
root, with the environment pointing the runtime at the servers
(``JASECI_LIKE__DB__URL``, ``JASECI_LIKE__REDIS__ENABLED``, ``JASECI_LIKE__REDIS__URL``).
It builds a :class:`~jaseci_like.Runtime` with the ``probe`` plugin, prints
``ready`` and then answers one command per stdin line, one line per answer
(stdout is flushed after every line):

``set LEVEL``               config_set probe.level            -> ``set LEVEL``
``get``                     the stored effective probe.level   -> ``get LEVEL``
``wait LEVEL TIMEOUT``      until get == LEVEL                 -> ``seen LEVEL`` | ``timeout LAST``
``live``                    probe.level the running service has -> ``live LEVEL``
``runs``                    how many times probe.run ran       -> ``runs N``
``waitruns N TIMEOUT``      until runs >= N                    -> ``runs N`` | ``timeout N``
``refresh``                 broadcast config_refresh of probe  -> ``refreshed``
``glob NAME``               hook.get_glob(NAME)                -> ``glob NAME TEXT``
``stress``                  start a read/write loop in a thread -> ``stressing``
``after K TAG``             once the loop did K more rounds    -> ``at TAG ROUNDS``
``stop``                    end the loop                       -> ``stopped ROUNDS``
``status``                  state of every service             -> ``status db=RUNNING ...``
``waitstatus TIMEOUT``      until db, redis and probe run      -> ``status db=RUNNING ...``
``quit``                    stop the runtime and exit          -> ``bye``

Anything that raises is caught and reported as a line ``error <what>: <Type>: <message>``
(also from the stress loop); the worker carries on. The tests assert there is none.

The wait commands re-read the worker's own hook in a bounded loop (``wait`` at each
change notice of the hook, and every ``RECHECK`` seconds regardless): the hook's
read path is the thing under test, so the loop belongs here, not in the test.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from jaseci_like import ConfigApi, MetaService, RedisHook, Runtime
from tests.procs import PROBE, ProbePlugin, ProbeService

#: Seconds between two reads of a bounded wait for a run count.
POLL = 0.002
#: Longest gap between two reads of ``wait`` when no change notice arrives.
RECHECK = 0.05
#: probe.level written by round ``i`` of worker number ``n``: unique per worker and round.
LEVEL_STRIDE = 100_000


class Worker:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.number = int("".join(c for c in worker_id if c.isdigit()) or "0")
        self._out = threading.Lock()
        self.runtime = Runtime(plugins={PROBE: ProbePlugin()}, meta=MetaService.isolated())
        self.hook = self.runtime.start()
        self.api = ConfigApi(self.hook)
        #: Set by the hook's listener whenever another process changes a glob.
        self._changed = threading.Event()
        if isinstance(self.hook, RedisHook):
            self.hook.on_change(lambda name: self._changed.set())
        self._stress: threading.Thread | None = None
        self._stop_stress = threading.Event()
        self._rounds = 0
        self._targets: list[tuple[int, str]] = []
        self._targets_lock = threading.Lock()

    # -- output ---------------------------------------------------------------------
    def emit(self, line: str) -> None:
        with self._out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def error(self, what: str, exc: BaseException) -> None:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        self.emit(f"error {what}: {text}")

    # -- reads --------------------------------------------------------------------------
    def level(self) -> int:
        return int(self.api.config_get(PROBE)["level"])

    def probe(self) -> ProbeService:
        service = self.hook.services[PROBE]
        assert isinstance(service, ProbeService)
        return service

    # -- commands -------------------------------------------------------------------------
    def handle(self, words: list[str]) -> bool:
        """Run one command; False when the worker should exit."""
        command, args = words[0], words[1:]
        if command == "quit":
            self.stop_stress()
            self.runtime.stop()
            self.emit("bye")
            return False
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            self.emit(f"error {command}: unknown command")
            return True
        try:
            handler(*args)
        except Exception as exc:  # reported as a line; the test fails on it
            self.error(command, exc)
        return True

    def cmd_set(self, level: str) -> None:
        self.api.config_set(PROBE, {"level": int(level)})
        self.emit(f"set {level}")

    def cmd_get(self) -> None:
        self.emit(f"get {self.level()}")

    def cmd_wait(self, level: str, timeout: str) -> None:
        """Read again at each change notice, and every ``RECHECK`` seconds regardless
        (a notice may be missed by design: the point is whether reads converge)."""
        want = int(level)
        deadline = time.monotonic() + float(timeout)
        while True:
            self._changed.clear()
            seen = self.level()
            if seen == want:
                self.emit(f"seen {seen}")
                return
            left = deadline - time.monotonic()
            if left <= 0:
                self.emit(f"timeout {seen}")
                return
            self._changed.wait(min(left, RECHECK))

    def cmd_live(self) -> None:
        self.emit(f"live {self.probe().config.get('level')}")

    def cmd_runs(self) -> None:
        self.emit(f"runs {self.probe().runs}")

    def cmd_waitruns(self, count: str, timeout: str) -> None:
        want = int(count)
        deadline = time.monotonic() + float(timeout)
        while True:
            service = self.probe()
            if service.runs >= want and service.is_running():
                self.emit(f"runs {service.runs}")
                return
            if time.monotonic() > deadline:
                self.emit(f"timeout {service.runs}")
                return
            time.sleep(POLL)

    def cmd_refresh(self) -> None:
        self.api.config_refresh(PROBE, broadcast=True)
        self.emit("refreshed")

    def cmd_glob(self, name: str) -> None:
        self.emit(f"glob {name} {self.hook.get_glob(name)}")

    def states(self) -> dict[str, str]:
        return {s.name: s.state for s in self.runtime.status()}

    def cmd_status(self) -> None:
        self.emit("status " + " ".join(f"{k}={v}" for k, v in self.states().items()))

    def cmd_waitstatus(self, timeout: str) -> None:
        """The supervisor restarts a service that failed (redis, after an outage)."""
        deadline = time.monotonic() + float(timeout)
        while True:
            states = self.states()
            if all(states.get(n) == "RUNNING" for n in ("db", "redis", PROBE)):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(POLL * 10)
        self.emit("status " + " ".join(f"{k}={v}" for k, v in states.items()))

    # -- the stress loop ----------------------------------------------------------------
    def cmd_stress(self) -> None:
        if self._stress is not None:
            raise RuntimeError("already stressing")
        self._stop_stress.clear()
        self._stress = threading.Thread(target=self._stress_loop, name="stress", daemon=True)
        self._stress.start()
        self.emit("stressing")

    def cmd_after(self, rounds: str, tag: str) -> None:
        if self._stress is None:
            raise RuntimeError("not stressing")
        with self._targets_lock:
            self._targets.append((self._rounds + int(rounds), tag))

    def cmd_stop(self) -> None:
        rounds = self.stop_stress()
        self.emit(f"stopped {rounds}")

    def stop_stress(self) -> int:
        thread = self._stress
        if thread is not None:
            self._stop_stress.set()
            thread.join(30.0)
            if thread.is_alive():
                self.emit("error stop: the stress loop did not end within 30s")
            self._stress = None
        return self._rounds

    def _stress_loop(self) -> None:
        """Each round: config_set probe.level, save a glob of its own, read both back.

        Round ``i`` writes level ``number * LEVEL_STRIDE + i`` and glob
        ``STRESS_<worker>_<i>``; a round whose write raised is reported, and the
        loop goes on. ``stopped ROUNDS`` tells the test which globs must exist.
        """
        while not self._stop_stress.is_set():
            i = self._rounds
            self._round(i)
            self._rounds = i + 1
            with self._targets_lock:
                reached = [t for t in self._targets if t[0] <= self._rounds]
                self._targets = [t for t in self._targets if t[0] > self._rounds]
            for _, tag in reached:
                self.emit(f"at {tag} {self._rounds}")

    def _round(self, i: int) -> None:
        level = self.number * LEVEL_STRIDE + i
        name = f"STRESS_{self.worker_id}_{i}"
        value: dict[str, Any] = {"worker": self.worker_id, "round": i}
        try:
            self.api.config_set(PROBE, {"level": level})
        except Exception as exc:
            self.error(f"stress set round {i}", exc)
        try:
            self.hook.save_glob(name, value)
        except Exception as exc:
            self.error(f"stress save round {i}", exc)
        try:
            self.level()
            text = self.hook.get_glob(name)
            if text is None or json.loads(text) != value:
                self.emit(f"error stress read round {i}: {name} reads back as {text!r}")
        except Exception as exc:
            self.error(f"stress read round {i}", exc)


def main() -> int:
    worker_id = sys.argv[1] if len(sys.argv) > 1 else "w0"
    try:
        worker = Worker(worker_id)
    except Exception as exc:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        sys.stdout.write(f"error start: {text}\n")
        sys.stdout.flush()
        return 1
    worker.emit("ready")
    for line in sys.stdin:
        words = line.split()
        if words and not worker.handle(words):
            return 0
    worker.stop_stress()
    worker.runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
