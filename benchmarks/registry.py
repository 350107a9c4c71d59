"""The benchmark registry: ``@bench`` records a function that returns (value, baseline).

An area module (``benchmarks/core.py``, ``benchmarks/cli.py``...) declares its
figures with the decorator; ``benchmarks/run.py`` imports the areas, runs what the
command line selects, and prints and stores the ratios::

    @bench("core.thing", unit="ns", better="lower", target=Target("ratio", "<=", 3))
    def thing(ctx: Context) -> tuple[float, float]:
        return measure_ours(ctx.rounds(7)), measure_baseline(ctx.rounds(7))
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Better = Literal["lower", "higher"]
Op = Literal["<", "<=", ">", ">="]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    """A figure to reach, on the value itself or on the ratio (ours / baseline)."""

    on: Literal["value", "ratio"]
    op: Op
    limit: float

    def met(self, value: float, ratio: float) -> bool:
        return _OPS[self.op](value if self.on == "value" else ratio, self.limit)

    def __str__(self) -> str:
        return f"{self.on} {self.op} {self.limit:g}"


@dataclass
class Context:
    """What a benchmark function is given: the run mode, and a place for notes.

    ``notes`` are printed under the table; a ``problem`` (a check that failed,
    e.g. a non-zero exit code) also marks the row, so a figure measured on a
    broken run is never taken at face value.
    """

    quick: bool = False
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def rounds(self, full: int, quick: int = 3) -> int:
        """How many rounds to measure: ``full`` normally, fewer with ``--quick``."""
        return min(full, quick) if self.quick else full

    def note(self, text: str) -> None:
        self.notes.append(text)

    def problem(self, text: str) -> None:
        self.problems.append(text)


BenchFunc = Callable[[Context], tuple[float, float]]


@dataclass(frozen=True)
class Benchmark:
    """One registered figure: how to measure it and how to read it."""

    name: str
    unit: str
    better: Better
    func: BenchFunc
    target: Target | None = None


#: Every registered benchmark by name, in registration order.
BENCHMARKS: dict[str, Benchmark] = {}


def bench(
    name: str, *, unit: str, better: Better = "lower", target: Target | None = None
) -> Callable[[BenchFunc], BenchFunc]:
    """Register ``func`` as benchmark ``name`` (``area.figure``); a duplicate name is refused.

    ``func(ctx)`` returns ``(value, baseline)`` in ``unit``, both measured now, in
    this run, the same way; the ratio is value / baseline.
    """
    if "." not in name:
        raise ValueError(f"benchmark {name!r}: name it 'area.figure', e.g. 'core.{name}'")

    def register(func: BenchFunc) -> BenchFunc:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} is registered twice")
        BENCHMARKS[name] = Benchmark(name, unit, better, func, target)
        return func

    return register


def selected(patterns: list[str]) -> list[Benchmark]:
    """Benchmarks whose name equals or starts with one of ``patterns`` (all if none)."""
    return [
        b
        for b in BENCHMARKS.values()
        if not patterns or any(b.name == p or b.name.startswith(p) for p in patterns)
    ]
