"""The hook reference, read from the hook specifications themselves.

``jaseci-like plugins --hooks`` prints it, so it cannot drift from
:mod:`jaseci_like.plugins.hookspecs`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from jaseci_like.plugins import hookspecs


@dataclass(frozen=True)
class HookDoc:
    """One hook a plugin may implement: its name, signature and docstring."""

    name: str
    signature: str
    doc: str


def hook_docs() -> list[HookDoc]:
    """Every hook specification of the ``jaseci_like`` project, in source order."""
    marker = f"{hookspecs.PROJECT}_spec"
    specs = [
        func
        for _, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(func, marker)
    ]
    specs.sort(key=lambda func: func.__code__.co_firstlineno)
    return [
        HookDoc(
            name=func.__name__,
            signature=_signature(func),
            doc=inspect.getdoc(func) or "",
        )
        for func in specs
    ]


def _signature(func: Callable[..., object]) -> str:
    # The annotations are postponed strings; shown as written, without quotes.
    sig = inspect.signature(func)
    params = ", ".join(
        p.name if p.annotation is p.empty else f"{p.name}: {p.annotation}"
        for p in sig.parameters.values()
    )
    return f"{func.__name__}({params}) -> {sig.return_annotation}"


def render_hooks() -> str:
    """The reference as text: each hook's signature, then its docstring indented."""
    parts = [
        "Hooks a plugin may implement (decorate each with jaseci_like.hookimpl):",
        "",
    ]
    for hook in hook_docs():
        parts.append(hook.signature)
        parts.extend(f"    {line}".rstrip() for line in hook.doc.splitlines())
        parts.append("")
    return "\n".join(parts)
