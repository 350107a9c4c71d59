"""The seed's master contexts: what ``build_master`` / ``build_super_master`` build
when no class of your own is registered with ``add_context``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jaseci_like.hooks.memory import MemoryHook


class Master:
    """An owner of work that reaches every service through its hook, ``_h``.

    >>> from jaseci_like import MemoryHook
    >>> Master(h=MemoryHook())._h.services
    {}
    """

    def __init__(self, *args: Any, h: MemoryHook | None = None, **kwargs: Any) -> None:
        self._h = h
        self.args = args
        self.kwargs = kwargs


class SuperMaster(Master):
    """A master with rights over every other (the seed's admin)."""
