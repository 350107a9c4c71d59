"""``up`` waits for SIGINT/SIGTERM in its main thread: it must wake whichever of the
process's threads the kernel hands the signal to (under load, often not the main one)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import CodeType

import pytest

from jaseci_like.cli.signals import StopSignals

#: Only a guard against hanging the suite: the wait normally ends at once.
RESCUE_AFTER = 60.0


def send_when_waiting(main: int, sig: signal.Signals) -> None:
    """Signal this (helper) thread once the main thread is inside StopSignals.wait
    (blocked there: it only leaves on a signal)."""
    deadline = time.monotonic() + RESCUE_AFTER
    while not waiting_in(main, StopSignals.wait.__code__) and time.monotonic() < deadline:
        time.sleep(0.001)  # polls what the main thread is doing; not a guess at time
    signal.pthread_kill(threading.get_ident(), sig)


def waiting_in(thread: int, code: CodeType) -> bool:
    frame = sys._current_frames().get(thread)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_stop_signal_delivered_to_another_thread_wakes_the_main_thread(
    sig: signal.Signals,
) -> None:
    main = threading.get_ident()
    returned = threading.Event()
    rescued: list[bool] = []

    def watchdog() -> None:
        if not returned.wait(RESCUE_AFTER):
            rescued.append(True)
            signal.pthread_kill(main, sig)

    with StopSignals() as stop:
        # The signal goes to this helper thread, never to the main thread, and only
        # once the main thread is blocked inside wait().
        sender = threading.Thread(target=send_when_waiting, args=(main, sig))
        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        sender.start()
        stop.wait()
        returned.set()
        sender.join()
        assert stop.received
    guard.join()
    assert not rescued, "the main thread slept through a signal another thread received"


def test_signals_are_given_back_on_exit() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
