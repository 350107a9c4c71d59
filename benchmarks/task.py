"""Task figures: submit -> result embedded and on Celery + Redis, and stopping the service.

Each figure runs our task service and its baseline side by side in one process,
alternating call by call (round trips) or round by round (stop), so both see the
same machine.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jaseci_like_services.task import TaskContext, TaskService, TaskState

from benchmarks.registry import Context, Target, bench
from benchmarks.timing import median, paired, spread
from jaseci_like import MemoryHook, MetaService, ServiceState
from jaseci_like.config.layers import ConfigLayers

ROOT = Path(__file__).resolve().parent.parent
#: Seconds any single wait may take before the figure is called broken.
WAIT = 30.0
#: (ours, baseline) medians of one round, in ms.
Round = tuple[float, float]


@contextmanager
def _redis_url() -> Iterator[str]:
    """A private redis-server for one figure (the test suite's server class)."""
    sys.path.insert(0, str(ROOT))
    from tests.servers import RedisServer

    with RedisServer() as server:
        yield server.url


def _service(settings: Mapping[str, str]) -> TaskService:
    """A task service on an isolated registry, configured through the environment layer."""
    env = {f"JASECI_LIKE__TASK__{key.upper()}": value for key, value in settings.items()}
    meta = MetaService.isolated()
    hook = MemoryHook(ConfigLayers(environ=env))
    hook.meta = meta
    service = TaskService(hook)
    service.register("noop", _noop)
    service.start()
    if not service.is_running():
        raise RuntimeError(f"the task service did not start: {service.error}")
    return service


def _noop(ctx: TaskContext) -> None:
    """The trivial task: what is measured is the way there and back."""


def _roundtrips(count: int, ours: Callable[[], object], base: Callable[[], object]) -> Round:
    """Median ms of ``count`` calls of each (one submit -> result per call), the two
    interleaved call by call, so a change of machine speed hits both alike."""
    a: list[float] = []
    b: list[float] = []
    for n in range(count):
        for one, samples in ((ours, a), (base, b)) if n % 2 else ((base, b), (ours, a)):
            began = time.perf_counter_ns()
            one()
            samples.append((time.perf_counter_ns() - began) / 1e6)
    return median(a), median(b)


def _blocks(count: int, first: Callable[[], object], second: Callable[[], object]) -> Round:
    """Median ms of ``count`` calls of ``first``, then of ``count`` calls of ``second``."""
    out = []
    for one in (first, second):
        samples = []
        for _ in range(count):
            began = time.perf_counter_ns()
            one()
            samples.append((time.perf_counter_ns() - began) / 1e6)
        out.append(median(samples))
    return out[0], out[1]


def _rounds(
    ctx: Context,
    count: int,
    ours: Callable[[], object],
    base: Callable[[], object],
    interleave: bool = True,
) -> tuple[list[float], list[float]]:
    """Per-round medians of ours and the baseline.

    ``interleave``: call by call (both sides running at once, as the Celery figure
    needs). Otherwise block by block, alternating which goes first: two thread
    pools woken call by call steal each other's wake-ups, which flatters whichever
    runs second (the bare pool's round trips then ranged 0.02-0.08 ms).
    """
    rounds = []
    for n in range(ctx.rounds(9)):
        if interleave:
            rounds.append(_roundtrips(count, ours, base))
        elif n % 2:
            b, a = _blocks(count, base, ours)
            rounds.append((a, b))
        else:
            rounds.append(_blocks(count, ours, base))
    return [r[0] for r in rounds], [r[1] for r in rounds]


@bench("task.embedded_roundtrip", unit="ms", better="lower", target=Target("ratio", "<=", 3))
def embedded_roundtrip(ctx: Context) -> tuple[float, float]:
    """Embedded ``wait(submit("noop"))`` vs ``pool.submit(f).result()`` on a bare
    ``ThreadPoolExecutor`` with as many threads; median ms of each round, median of rounds."""
    service = _service({"mode": "embedded"})
    threads = service.task_settings.workers
    pool = ThreadPoolExecutor(max_workers=threads)

    def ours() -> object:
        done = service.wait(service.submit("noop"), WAIT)
        if done.state is not TaskState.SUCCESS:
            ctx.problem(f"a round trip ended {done.state}: {done.error}")
        return done

    def bare() -> object:
        return pool.submit(_noop, None).result(WAIT)  # type: ignore[arg-type]

    a, b = _rounds(ctx, 300 if ctx.quick else 3000, ours, bare, interleave=False)
    service.stop()
    pool.shutdown()
    value = median(a)
    ctx.note(f"{threads} threads each; rounds {spread(a)} ms, baseline {spread(b)} ms")
    ctx.note(f"value under 20 ms: {'yes' if value < 20 else 'NO'} ({value:.3f} ms)")
    return value, median(b)


@bench("task.celery_redis_roundtrip", unit="ms", better="lower", target=Target("ratio", "<=", 1.2))
def celery_redis_roundtrip(ctx: Context) -> tuple[float, float]:
    """Celery mode ``wait(submit("noop"))`` vs a raw Celery app's ``noop.delay().get()``.

    Same redis-server (broker and backend), each with one in-process worker thread
    started the same way, running at the same time; median ms per round trip.
    """
    from celery import Celery  # type: ignore[import-untyped]
    from jaseci_like_services.task.celery_worker import InProcessWorker

    with _redis_url() as url:
        service = _service({"mode": "celery", "broker_url": url, "workers": "1"})
        raw = Celery("raw", broker=url, backend=url, set_as_current=False)
        raw.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

        @raw.task(name="noop", shared=False)  # type: ignore[untyped-decorator]
        def raw_noop() -> None:
            """The same trivial task, on raw Celery."""

        worker = InProcessWorker(raw, 1)
        thread = threading.Thread(target=worker.run, name="raw-celery-worker", daemon=True)
        thread.start()
        if not worker.ready.wait(WAIT):
            ctx.problem("the raw Celery worker did not start")

        def ours() -> object:
            done = service.wait(service.submit("noop"), WAIT)
            if done.state is not TaskState.SUCCESS:
                ctx.problem(f"a round trip ended {done.state}: {done.error}")
            return done

        def bare() -> Any:
            return raw_noop.delay().get(timeout=WAIT, disable_sync_subtasks=False)

        count = 30 if ctx.quick else 200
        _roundtrips(count, ours, bare)  # warm both: connections, subscriptions, code paths
        a, b = _rounds(ctx, count, ours, bare)
        service.stop()
        worker.stop(WAIT)
        raw.close()
    ctx.note(f"rounds {spread(a)} ms, baseline {spread(b)} ms")
    ctx.note(
        "ours adds per task: the id's name record (SET) at submit, and STARTED written "
        "with the revocation check (one Lua call) in the worker"
    )
    return median(a), median(b)


@bench("task.stop", unit="s", better="lower", target=Target("value", "<", 2.0))
def stop(ctx: Context) -> tuple[float, float]:
    """Seconds ``stop()`` takes for the task service in Celery mode with worker and beat
    running (idle), vs a raw Celery app's worker stopped by Celery's own remote
    ``shutdown`` command (broadcast once it answers a ping, then its thread joined)."""
    from celery import Celery
    from jaseci_like_services.task.celery_worker import InProcessWorker

    with _redis_url() as url:
        settings = {
            "mode": "celery",
            "broker_url": url,
            "workers": "2",
            "periodic": '{"tick": {"task": "noop", "every": 3600}}',
        }

        def ours() -> float:
            before = set(threading.enumerate())
            service = _service(settings)
            if sorted(service.daemon_names()) != ["beat", "worker"]:
                ctx.problem(f"daemons running: {service.daemon_names()} (worker, beat expected)")
            began = time.perf_counter()
            service.stop()
            took = time.perf_counter() - began
            if service.state is not ServiceState.STOPPED:
                ctx.problem(f"the service ended {service.state.name}")
            left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
            if left:
                ctx.problem(f"threads left after stop: {left}")
            return took

        def raw() -> float:
            app = Celery("raw", broker=url, backend=url, set_as_current=False)
            app.conf.update(
                worker_hijack_root_logger=False, broker_connection_retry_on_startup=True
            )
            worker = InProcessWorker(app, 2)
            thread = threading.Thread(target=worker.controller.start, daemon=True)
            thread.start()
            worker.ready.wait(WAIT)
            # A broadcast reaches only workers already subscribed: wait for a pong.
            deadline = time.monotonic() + WAIT
            while not app.control.ping(destination=[worker.name], timeout=0.5):
                if time.monotonic() > deadline:
                    ctx.problem("the raw Celery worker never answered a ping")
                    break
            began = time.perf_counter()
            app.control.shutdown(destination=[worker.name])
            thread.join(WAIT)
            took = time.perf_counter() - began
            app.close()
            return took

        a, b = paired(ours, raw, ctx.rounds(7, 3))
    ctx.note(f"rounds {spread(a)} s, baseline {spread(b)} s")
    return median(a), median(b)
