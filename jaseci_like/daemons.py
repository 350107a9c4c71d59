"""Named daemon threads owned by one service instance.

Stopping is cooperative: a target that accepts one positional argument receives a
:class:`threading.Event` that is set when it must return; a target that accepts
none (a library's own loop such as ``worker.start``) is stopped by the owning
service's teardown calling that library's stop. Joins are bounded; no thread is
ever killed with an asynchronous exception.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CrashHandler = Callable[[str, BaseException], None]


@dataclass
class _Daemon:
    thread: threading.Thread
    stop: threading.Event = field(default_factory=threading.Event)


def _wants_event(target: Callable[..., object], name: str) -> bool:
    """True when ``target`` takes exactly one required positional argument."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # builtins without a signature: call them bare
        return False
    required = [
        p
        for p in sig.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) > 1:
        raise TypeError(
            f"daemon {name!r}: target {target!r} needs {len(required)} arguments; "
            "a daemon target takes none, or one (the stop event)"
        )
    return len(required) == 1


class DaemonGroup:
    """The daemon threads of one owner, by name."""

    def __init__(self, owner: str, on_crash: CrashHandler) -> None:
        self._owner = owner
        self._on_crash = on_crash
        self._lock = threading.Lock()
        self._daemons: dict[str, _Daemon] = {}

    def spawn(self, targets: Mapping[str, Callable[..., object]]) -> list[str]:
        """Start a daemon per name; a name whose daemon is alive is left alone.

        Returns the names that were started now.
        """
        plans = [(name, target, _wants_event(target, name)) for name, target in targets.items()]
        started: list[str] = []
        with self._lock:
            for name, target, wants_event in plans:
                current = self._daemons.get(name)
                if current is not None and current.thread.is_alive():
                    log.debug("%s: daemon %r is alive; not spawned twice", self._owner, name)
                    continue
                stop = threading.Event()
                thread = threading.Thread(
                    target=self._run,
                    args=(name, target, stop, wants_event),
                    name=f"{self._owner}:{name}",
                    daemon=True,
                )
                self._daemons[name] = _Daemon(thread, stop)
                started.append(name)
                thread.start()
        return started

    def _run(
        self,
        name: str,
        target: Callable[..., object],
        stop: threading.Event,
        wants_event: bool,
    ) -> None:
        try:
            if wants_event:
                target(stop)
            else:
                target()
        except Exception as exc:  # reported to the owner, which records it and fails
            if stop.is_set():
                log.debug("%s: daemon %r raised while stopping: %r", self._owner, name, exc)
            else:
                self._on_crash(name, exc)

    def names(self) -> list[str]:
        """Names of the daemons that are alive now."""
        with self._lock:
            return [n for n, d in self._daemons.items() if d.thread.is_alive()]

    def signal(self, *names: str) -> None:
        """Ask daemons to stop (all when no name is given) without waiting."""
        with self._lock:
            chosen = names or tuple(self._daemons)
            for name in chosen:
                daemon = self._daemons.get(name)
                if daemon is not None:
                    daemon.stop.set()

    def join(self, *names: str, timeout: float) -> list[str]:
        """Wait, at most ``timeout`` seconds in all, for daemons to end.

        Ended daemons are forgotten; the names still alive afterwards are returned.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            chosen = {n: d for n, d in self._daemons.items() if not names or n in names}
        current = threading.current_thread()
        left: list[str] = []
        for name, daemon in chosen.items():
            if daemon.thread is not current:
                daemon.thread.join(max(0.0, deadline - time.monotonic()))
            if daemon.thread.is_alive():
                left.append(name)
        with self._lock:
            for name, daemon in chosen.items():
                if name not in left and self._daemons.get(name) is daemon:
                    del self._daemons[name]
        return left

    def terminate(self, *names: str, timeout: float) -> list[str]:
        """Signal then join; returns the names that did not stop in time."""
        self.signal(*names)
        left = self.join(*names, timeout=timeout)
        for name in left:
            log.warning(
                "%s: daemon %r did not stop within %.2fs; left running as a daemon thread",
                self._owner,
                name,
                timeout,
            )
        return left
