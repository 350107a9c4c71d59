"""Periodic tasks: Celery beat's scheduler, sending through the service's ``submit``.

The schedule math (``every`` seconds or a cron line, due times, the heap of
entries) is Celery's ``beat.Scheduler``. Two things differ from ``celery beat``:
a due entry goes through ``TaskService.submit`` (so it is recorded, and it works
in embedded mode, where there is no broker), and the loop waits on the daemon's
stop event instead of sleeping, so stopping takes no longer than a wake-up.

Once per system: beat runs only while this instance leads (``leading``), and each
tick is claimed (``claim``, fenced by the leader lease's token) before it is sent,
so two processes never send one tick, not even around a change of leader. For
that, ``every`` schedules are aligned on the clock (a 5 s entry is due at :00,
:05, ...), which makes a tick the same in every process: ``<entry>:<slot>``.

A tick missed while the system had no leader is not lost: a scheduler made when
leadership is gained (``catch_up`` seconds, the lease time) sends the current
slot's tick at once when that slot began less than ``catch_up`` ago. Its claim
keeps it single: if the old leader sent it, the claim is taken and nothing is sent.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from celery.beat import Scheduler  # type: ignore[import-untyped]
from celery.schedules import schedule as interval  # type: ignore[import-untyped]

from jaseci_like.supervisor import describe_failure

log = logging.getLogger(__name__)

Submit = Callable[[str, Mapping[str, Any]], str]
#: Claims a tick for the system (True once, for the first claimer): key, seconds kept.
Claim = Callable[[str, float], bool]
#: Seconds a standby waits between two looks at whether it leads now.
STANDBY_POLL = 0.2


class SubmittingScheduler(Scheduler):  # type: ignore[misc]
    """A beat scheduler whose due entries are handed to ``submit``."""

    #: Celery's scheduler opens a broker producer for sending; ours never sends.
    producer = None

    def __init__(
        self,
        app: Any,
        submit: Submit,
        claim: Claim | None = None,
        catch_up: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self._submit = submit
        self._claim = claim
        self._catch_up = catch_up
        super().__init__(app, **kwargs)

    def install_default_entries(self, data: Any) -> None:
        """None: results expire by themselves (Redis TTL, or the embedded purge)."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        now: datetime = self.app.now()
        for name, entry in list(self.schedule.items()):
            start = self._slot_start(entry)
            if isinstance(entry.schedule, interval) and (now - start) < timedelta(
                seconds=self._catch_up
            ):
                # This slot may have gone unsent while no one led: due now (its claim
                # says whether it was sent).
                start -= timedelta(seconds=self._period(entry))
            self.schedule[name] = entry._next_instance(start)

    def reserve(self, entry: Any) -> Any:
        # The next run counts from the start of this tick's slot, not from now: no
        # drift, and every process agrees on the ticks.
        new_entry = self.schedule[entry.name] = entry._next_instance(self._slot_start(entry))
        return new_entry

    def _period(self, entry: Any) -> float:
        if isinstance(entry.schedule, interval):
            return max(float(entry.schedule.run_every.total_seconds()), 1e-3)
        return 60.0  # cron lines and the rest: a minute is their finest grain

    def _slot_start(self, entry: Any) -> datetime:
        now: datetime = self.app.now()
        if not isinstance(entry.schedule, interval):
            return now  # Celery's own next run for a cron line
        period = self._period(entry)
        return datetime.fromtimestamp(math.floor(now.timestamp() / period) * period, now.tzinfo)

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> str | None:
        entry = self.reserve(entry) if advance else entry
        if self._claim is not None:
            period = self._period(entry)
            slot = math.floor(self.app.now().timestamp() / period)
            key = f"beat:{entry.name}:{slot}"
            try:
                claimed = self._claim(key, max(2 * period, 60.0))
            except Exception as exc:  # store down: skip the tick rather than risk two
                log.warning("beat: %s not sent (its claim failed): %s", key, describe_failure(exc))
                return None
            if not claimed:
                log.info("beat: %s was sent already (or this instance no longer leads)", key)
                return None
            log.info("beat: sending %s", key)
        return self._submit(entry.task, dict(entry.kwargs or {}))


def run_beat(
    make: Callable[[], Any],
    stop: threading.Event,
    leading: Callable[[], bool] | None = None,
    changed: threading.Event | None = None,
) -> None:
    """Tick a scheduler from ``make`` until ``stop`` is set, waiting on it between
    due entries. With ``leading``: only while it says yes; a fresh scheduler each
    time leadership is gained. A standby looks again every ``STANDBY_POLL``, or at
    once when ``changed`` is set (by the lease, when leadership moves here)."""
    scheduler: Any = None
    while not stop.is_set():
        if leading is not None and not leading():
            scheduler = None
            if changed is None:
                stop.wait(STANDBY_POLL)
            elif changed.wait(STANDBY_POLL):
                changed.clear()
            continue
        if scheduler is None:
            scheduler = make()
        delay = scheduler.tick()
        if delay:
            # A leader looks again at least every STANDBY_POLL: it may have lost the lease.
            stop.wait(delay if leading is None else min(delay, STANDBY_POLL))
