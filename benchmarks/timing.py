"""Timing primitives shared by the benchmark areas: one clock, paired rounds.

Every figure is taken with :func:`time.perf_counter_ns`. Ours and the baseline
run in alternating rounds, so a machine that slows down or speeds up part-way
(another process, CPU frequency) affects both alike.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable


def elapsed_ns(action: Callable[[], object]) -> int:
    """Nanoseconds ``action()`` took; a full collection first, so every round starts even."""
    gc.collect()
    began = time.perf_counter_ns()
    action()
    return time.perf_counter_ns() - began


def paired(
    ours: Callable[[], float], baseline: Callable[[], float], rounds: int
) -> tuple[list[float], list[float]]:
    """``rounds`` samples of each, alternating which goes first."""
    a: list[float] = []
    b: list[float] = []
    for n in range(rounds):
        if n % 2:
            b.append(baseline())
            a.append(ours())
        else:
            a.append(ours())
            b.append(baseline())
    return a, b


def median(samples: list[float]) -> float:
    return float(statistics.median(samples))


def spread(samples: list[float]) -> str:
    """``min..max`` of the samples, for the notes (is the median trustworthy?)."""
    return f"{min(samples):.3g}..{max(samples):.3g}"
