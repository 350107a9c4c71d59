"""Core figures: the warm registry lookup, and starting and stopping many services."""

from __future__ import annotations

import time
import timeit
from types import MappingProxyType

from benchmarks.registry import Context, Target, bench
from benchmarks.timing import elapsed_ns, median, paired, spread
from jaseci_like import CommonService, MemoryHook, MetaService, ServiceState

#: Per-service cost (µs) of each start/stop size measured in this run, to show growth.
_PER_SERVICE_US: dict[int, float] = {}


def _trivial_class(index: int) -> type[CommonService]:
    """A service with nothing to do but set ``app``: what is left is the runtime's cost."""

    class Trivial(CommonService):
        name = f"trivial{index}"
        default_config = MappingProxyType({"enabled": True})

        def run(self, hook: MemoryHook | None = None) -> None:
            self.app = True

    Trivial.__qualname__ = f"Trivial{index}"
    return Trivial


@bench("core.get_service_warm", unit="ns", better="lower", target=Target("ratio", "<=", 3))
def get_service_warm(ctx: Context) -> tuple[float, float]:
    """``meta.get_service(name)`` of a built background service vs ``table[name]``.

    Both run as a timeit statement (same loop, same iteration count, names bound
    as locals in the setup, GC off); the figure is the best (min) of the rounds,
    as usual for micro-benchmarks: noise only ever adds time.
    """
    meta = MetaService.isolated()
    meta.add_service_builder("trivial", _trivial_class(0))
    service = meta.get_service("trivial")
    if not service.is_running():
        ctx.problem(f"the measured service is {service.state.name}, not RUNNING")
    table = {"trivial": service}
    number = 200_000 if ctx.quick else 1_000_000
    ours = timeit.Timer("meta.get_service(name)", "meta = m; name = 'trivial'", globals={"m": meta})
    base = timeit.Timer("table[name]", "table = t; name = 'trivial'", globals={"t": table})
    empty = timeit.Timer("pass", "name = 'trivial'")
    a, b = paired(
        lambda: ours.timeit(number) * 1e9 / number,
        lambda: base.timeit(number) * 1e9 / number,
        ctx.rounds(9),
    )
    loop = min(empty.repeat(ctx.rounds(5), number)) * 1e9 / number
    ctx.note(f"both include the timeit loop itself: {loop:.1f} ns per iteration")
    return min(a), min(b)


class _Plain:
    """The baseline's stand-in for a service: an object whose ``app`` is set and cleared."""

    __slots__ = ("app",)

    def __init__(self) -> None:
        self.app: object = None


def _start_stop(ctx: Context, count: int, rounds: int) -> tuple[float, float]:
    """ms to register ``count`` trivial services on an isolated registry, start them all
    with ``build_hook`` and stop them with ``stop_all`` (class definitions not counted).

    Baseline: the floor any registry pays for ``count`` services: as many plain
    objects created, appended to a list, their ``app`` set and cleared, the list
    cleared. (A ThreadPoolExecutor with ``count`` submits would flatter us: trivial
    services start inline, without threads.) Median of the rounds.
    """
    began = time.perf_counter_ns()
    classes = [_trivial_class(i) for i in range(count)]
    defined_ms = (time.perf_counter_ns() - began) / 1e6
    hooks: list[MemoryHook] = []

    def cycle() -> None:
        meta = MetaService.isolated()
        for cls in classes:
            meta.add_service_builder(cls.name, cls)
        hook = meta.build_hook()
        meta.stop_all()
        hooks.append(hook)

    def plain() -> None:
        objects: list[_Plain] = []
        for _ in range(count):
            objects.append(_Plain())
        for obj in objects:
            obj.app = True
        for obj in reversed(objects):
            obj.app = None
        objects.clear()

    def ours() -> float:
        hooks.clear()
        took = elapsed_ns(cycle) / 1e6
        stopped = sum(s.state is ServiceState.STOPPED for s in hooks[0].services.values())
        if stopped != count:
            ctx.problem(f"only {stopped} of {count} services were started and stopped")
        hooks.clear()
        return took

    a, b = paired(ours, lambda: elapsed_ns(plain) / 1e6, rounds)
    value, baseline = median(a), median(b)
    per_service = value * 1000 / count
    _PER_SERVICE_US[count] = per_service
    ctx.note(
        f"per service: {per_service:.1f} µs (baseline {baseline * 1000 / count:.2f} µs); "
        f"rounds {spread(a)} ms; defining the {count} classes took {defined_ms:.0f} ms "
        "(not counted)"
    )
    smaller = [n for n in _PER_SERVICE_US if n < count]
    if smaller:
        n = max(smaller)
        growth = per_service / _PER_SERVICE_US[n]
        ctx.note(f"per-service cost is {growth:.2f}x that at {n} services (1.00x = linear)")
    return value, baseline


@bench("core.start_stop_1000", unit="ms", better="lower", target=Target("value", "<", 100))
def start_stop_1000(ctx: Context) -> tuple[float, float]:
    return _start_stop(ctx, 1000, ctx.rounds(15, 5))


@bench("core.start_stop_10000", unit="ms", better="lower")
def start_stop_10000(ctx: Context) -> tuple[float, float]:
    return _start_stop(ctx, 10_000, ctx.rounds(5, 2))
