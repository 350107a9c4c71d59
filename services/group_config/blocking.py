"""Synchronous facades: the async methods run on the runtime loop, the caller blocks.

A facade class lists the methods it offers; each call schedules the coroutine
on the shared loop (``RuntimeLoop.run``) and waits for its result, keeping the
method's signature for the type checker. The caller's context variables (the
current user) travel with the call: ``run_coroutine_threadsafe`` runs it in a
copy of the calling thread's context.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from jaseci_like.loop import RuntimeLoop

S = TypeVar("S")
P = ParamSpec("P")
T = TypeVar("T")


class Facade(Generic[S]):
    """Blocking access to ``target``'s async methods through ``loop``."""

    def __init__(self, target: S, loop: RuntimeLoop) -> None:
        self.target = target
        self.loop = loop


class blocking(Generic[S, P, T]):
    """``name = blocking(Service.method)`` in a :class:`Facade` subclass."""

    def __init__(self, method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]]) -> None:
        self.method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> blocking[S, P, T]: ...
    @overload
    def __get__(self, obj: Facade[S], owner: type[Any]) -> Callable[P, T]: ...
    def __get__(
        self, obj: Facade[S] | None, owner: type[Any]
    ) -> blocking[S, P, T] | Callable[P, T]:
        if obj is None:
            return self
        method, target, run = self.method, obj.target, obj.loop.run

        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return run(method(target, *args, **kwargs))

        return call
