"""Run the benchmarks: ``python benchmarks/run.py [--quick] [NAME ...]``.

NAME selects benchmarks by exact name or prefix (``core.``, ``cli.up_ready``).
Prints a table of value, baseline and ratio (ours / baseline, both measured in
this run) and merges the figures into ``benchmarks/results.json``, keeping the
names it did not run. Nothing here asserts an absolute time; the exit code is
1 only when a benchmark could not be measured at all.

To add a figure: write ``@bench("area.name", unit=..., better=...)`` on a function
in the area's module (``benchmarks/<area>.py``); a new area also goes in AREAS.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
# Run as a script, the repository root is not on sys.path; the areas import
# `benchmarks.*` and the project from the working tree.
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

if TYPE_CHECKING:
    from benchmarks.registry import Benchmark

#: Area modules, each registering its figures under "<area>.<name>".
AREAS = (
    "benchmarks.core",
    "benchmarks.cli",
    "benchmarks.config",
    "benchmarks.task",
    "benchmarks.group_config",
    "benchmarks.supervisor",
    "benchmarks.api",
    "benchmarks.reliability",
    "benchmarks.jsorc",
    "benchmarks.cluster",
    "benchmarks.ui",
    "benchmarks.embed",
)
RESULTS = HERE / "results.json"


@dataclass(frozen=True)
class Row:
    bench: Benchmark
    value: float
    baseline: float
    notes: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else math.inf

    def verdict(self) -> str:
        target = self.bench.target
        met = "" if target is None else ("yes" if target.met(self.value, self.ratio) else "NO")
        return f"{met} (check failed)".strip() if self.problems else met

    def record(self) -> dict[str, Any]:
        return {
            "value": _round(self.value),
            "unit": self.bench.unit,
            "baseline": _round(self.baseline),
            "ratio": _round(self.ratio),
            "better": self.bench.better,
        }


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def load_areas(patterns: list[str]) -> None:
    """Import the area modules a pattern can select (all of them when none is given, or
    when a pattern names no module: ``promon.query_ms`` lives in the jsorc module)."""
    areas = {module.rpartition(".")[2]: module for module in AREAS}
    for pattern in patterns or [""]:
        named = [
            module
            for area, module in areas.items()
            if area.startswith(pattern) or pattern.startswith(area + ".")
        ]
        for module in named or AREAS:
            importlib.import_module(module)


def measure(bench: Benchmark, quick: bool) -> Row:
    from benchmarks.registry import Context

    ctx = Context(quick=quick)
    value, baseline = bench.func(ctx)
    return Row(bench, float(value), float(baseline), tuple(ctx.notes), tuple(ctx.problems))


def table(rows: list[Row]) -> str:
    head = ["NAME", "VALUE", "UNIT", "BASELINE", "RATIO", "BETTER", "TARGET", "MET"]
    body = [
        [
            r.bench.name,
            f"{r.value:.4g}",
            r.bench.unit,
            f"{r.baseline:.4g}",
            f"{r.ratio:.2f}",
            r.bench.better,
            str(r.bench.target or "-"),
            r.verdict() or "-",
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    right = {1, 3, 4}
    lines = [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in [head, *body]
    ]
    return "\n".join(lines)


def merge_results(path: Path, rows: list[Row]) -> None:
    """Write ``rows`` into ``path``, keeping every other name already there."""
    results: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            print(f"warning: {path} is not JSON ({exc.msg}); starting it afresh", file=sys.stderr)
        else:
            if isinstance(loaded, dict):
                results = loaded
    results.update({r.bench.name: r.record() for r in rows})
    path.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", metavar="NAME", help="a name or a prefix (core.)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a rough figure fast")
    parser.add_argument("--list", action="store_true", help="list the names and exit")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"results file (default {RESULTS})"
    )
    args = parser.parse_args(argv)

    from benchmarks.registry import selected

    load_areas(args.names)
    chosen = selected(args.names)
    if args.list:
        for b in chosen:
            target = f", target {b.target}" if b.target else ""
            print(f"{b.name}  ({b.unit}, {b.better} is better{target})")
        return 0
    if not chosen:
        print(f"no benchmark matches {' '.join(args.names)}", file=sys.stderr)
        return 2

    rows: list[Row] = []
    broken: list[str] = []
    for b in chosen:
        print(f"running {b.name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            rows.append(measure(b, args.quick))
        except Exception:
            broken.append(b.name)
            print(f"error: {b.name} could not be measured:", file=sys.stderr)
            traceback.print_exc()
        else:
            print(f"  done in {time.perf_counter() - began:.1f}s", file=sys.stderr, flush=True)

    print(table(rows))
    for r in rows:
        for problem in r.problems:
            print(f"  {r.bench.name}: PROBLEM: {problem}")
        for note in r.notes:
            print(f"  {r.bench.name}: {note}")
    if broken:
        print(f"not measured: {', '.join(broken)}")
    if rows:
        merge_results(args.output, rows)
        print(f"written to {args.output}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
