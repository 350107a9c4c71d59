"""Resilience policies for repository operations: retry transient errors, count and time.

Only a transient database error (see :func:`is_transient`) is retried, with
exponential backoff and jitter; a domain error (not found, forbidden, a limit)
returns at once. Every call is counted and timed by operation and outcome in a
prometheus ``CollectorRegistry`` the owner passes in, so two services (or two
tests) never share counters by accident.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from jaseci_like.errors import JaseciLikeError
from jaseci_like.repository.errors import DatabaseUnavailable, is_transient

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger(__name__)

OK = "ok"
TRANSIENT = "transient"
ERROR = "error"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``attempts`` runs; before run n+1 wait about ``base_delay * 2**(n-1)``
    (at most ``max_delay``), randomized between half and all of it. No retry starts
    after ``max_total`` seconds, so an outage costs a caller a bounded wait."""

    attempts: int = 4
    base_delay: float = 0.02
    max_delay: float = 1.0
    max_total: float = 5.0

    def __post_init__(self) -> None:
        if (
            self.attempts < 1
            or self.base_delay < 0
            or self.max_delay < self.base_delay
            or self.max_total <= 0
        ):
            raise ValueError(
                f"{self!r}: need attempts >= 1, 0 <= base_delay <= max_delay and max_total > 0"
            )

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return float(cap / 2 + rng.random() * cap / 2)


@dataclass(frozen=True)
class RetryEvent:
    """Attempt ``attempt`` of ``operation`` failed with a transient ``error``; the next
    one starts after ``delay`` seconds."""

    operation: str
    attempt: int
    delay: float
    error: BaseException


def outcome_of(exc: BaseException | None) -> str:
    """The metric label of a result: ``ok``, a domain error's code, ``transient`` or ``error``."""
    if exc is None:
        return OK
    if isinstance(exc, JaseciLikeError):
        return exc.code
    return TRANSIENT if is_transient(exc) else ERROR


class OperationMetrics:
    """``<prefix>_operations_total``, ``_operation_seconds``, ``_attempts_total`` and
    ``_retries_total`` in ``registry``."""

    def __init__(self, prefix: str, registry: CollectorRegistry | None = None) -> None:
        # Imported here: loading a plugin that uses this module stays cheap.
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        self.prefix = prefix
        labels = ("operation", "outcome")
        self.calls = Counter(
            f"{prefix}_operations", "Operations by outcome.", labels, registry=self.registry
        )
        self.seconds = Histogram(
            f"{prefix}_operation_seconds",
            "Time per operation, retries included.",
            labels,
            registry=self.registry,
            buckets=_BUCKETS,
        )
        self.attempts = Counter(
            f"{prefix}_attempts",
            "Transactions run (1 + retries).",
            ("operation",),
            registry=self.registry,
        )
        self.retries = Counter(
            f"{prefix}_retries",
            "Retries after transient errors.",
            ("operation",),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe(self, operation: str, outcome: str, seconds: float, attempts: int) -> None:
        key = (operation, outcome)
        children = self._children.get(key)
        if children is None:
            children = (self.calls.labels(*key), self.seconds.labels(*key))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        self.attempts.labels(operation).inc(attempts)
        if attempts > 1:
            self.retries.labels(operation).inc(attempts - 1)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when absent), e.g. ``value("operations_total", ...)``."""
        found = self.registry.get_sample_value(f"{self.prefix}_{name}", labels)
        return 0.0 if found is None else found


class Resilience:
    """Runs an operation with the retry policy and records it in the metrics.

    ``on_retry`` (optional, async) is awaited before each retry's wait: for
    logging, or for a test to release the lock that made the attempt fail.
    ``typed_unavailable``: a transient error left after the retries is raised as
    :class:`DatabaseUnavailable` (the driver's error as its cause) instead of as it is.
    """

    def __init__(
        self,
        metrics: OperationMetrics,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], Awaitable[None]] | None = None,
        seed: int | None = None,
        *,
        typed_unavailable: bool = False,
    ) -> None:
        self.metrics = metrics
        self.retry = retry if retry is not None else RetryPolicy()
        self.on_retry = on_retry
        self.typed_unavailable = typed_unavailable
        self._rng = random.Random(seed)

    async def call(self, operation: str, func: Callable[[], Awaitable[T]]) -> T:
        """``await func()``, again after a transient error, up to the policy's attempts."""
        began = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await func()
            except Exception as exc:
                transient = is_transient(exc)
                delay = self.retry.backoff(attempt, self._rng) if transient else 0.0
                spent = time.perf_counter() - began
                if (
                    transient
                    and attempt < self.retry.attempts
                    and spent + delay <= self.retry.max_total
                ):
                    log.warning(
                        "%s: attempt %d of %d hit a transient database error (%s); "
                        "retrying in %.3fs",
                        operation,
                        attempt,
                        self.retry.attempts,
                        type(exc).__name__,
                        delay,
                    )
                    if self.on_retry is not None:
                        await self.on_retry(RetryEvent(operation, attempt, delay, exc))
                    await asyncio.sleep(delay)
                    continue
                self.metrics.observe(operation, outcome_of(exc), spent, attempt)
                if transient and self.typed_unavailable:
                    raise DatabaseUnavailable(
                        f"{operation}: the database is unavailable ({type(exc).__name__}, "
                        f"{attempt} attempt(s) in {spent:.2f}s); nothing was changed, "
                        "retry in a moment",
                        retry_after=max(1.0, self.retry.max_delay),
                    ) from exc
                raise
            self.metrics.observe(operation, OK, time.perf_counter() - began, attempt)
            return result


class HasResilience(Protocol):
    @property
    def resilience(self) -> Resilience: ...


S = TypeVar("S", bound=HasResilience)


def resilient(
    operation: str,
) -> Callable[
    [Callable[Concatenate[S, P], Awaitable[T]]], Callable[Concatenate[S, P], Coroutine[Any, Any, T]]
]:
    """Run a method through its object's ``resilience`` under the name ``operation``.

    Each attempt calls the whole method again, so it must open its own
    transaction (a db source call) and have no other side effect.
    """

    def decorate(
        method: Callable[Concatenate[S, P], Awaitable[T]],
    ) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
        @wraps(method)
        async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            return await self.resilience.call(operation, lambda: method(self, *args, **kwargs))

        return wrapper

    return decorate
