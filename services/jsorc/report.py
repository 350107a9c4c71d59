"""What JsOrc did: one line per action, the last pass, kept for ``jsorc status``.

The status is saved as the ``JSORC_STATUS`` glob after each pass, so it reaches
whatever shares the config store (``jaseci-like jsorc status`` in another
process reads it there).
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from jaseci_like import MemoryHook

STATUS_GLOB = "JSORC_STATUS"
#: Actions kept in ``recent``.
RECENT = 50

Outcome = Literal["ok", "failed", "waiting", "skipped"]


@dataclass(frozen=True)
class Step:
    """One action of a pass (secrets masked in ``detail``)."""

    service: str
    action: str
    outcome: Outcome
    detail: str = ""
    at: float = field(default_factory=time.time)

    def __str__(self) -> str:
        tail = f": {self.detail}" if self.detail else ""
        return f"{self.service}: {self.action} {self.outcome}{tail}"


@dataclass
class Status:
    """Everything ``jsorc status`` shows."""

    keep_alive: list[str]
    interval: float
    role: str = "leader"
    passes: int = 0
    last_pass_at: float | None = None
    last_pass_seconds: float | None = None
    last_pass: list[Step] = field(default_factory=list)
    #: The last step of each service, and its state at the last pass.
    services: dict[str, Step] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    recent: deque[Step] = field(default_factory=lambda: deque(maxlen=RECENT))

    def to_json(self) -> str:
        doc = {
            "keep_alive": self.keep_alive,
            "interval": self.interval,
            "role": self.role,
            "passes": self.passes,
            "last_pass_at": self.last_pass_at,
            "last_pass_seconds": self.last_pass_seconds,
            "last_pass": [asdict(s) for s in self.last_pass],
            "services": {n: asdict(s) for n, s in self.services.items()},
            "states": self.states,
            "recent": [asdict(s) for s in self.recent],
        }
        return json.dumps(doc)

    @classmethod
    def from_json(cls, text: str) -> Status:
        doc: dict[str, Any] = json.loads(text)
        status = cls(list(doc.get("keep_alive") or []), float(doc.get("interval") or 0))
        status.role = str(doc.get("role") or "leader")
        status.passes = int(doc.get("passes") or 0)
        status.last_pass_at = doc.get("last_pass_at")
        status.last_pass_seconds = doc.get("last_pass_seconds")
        status.last_pass = [Step(**s) for s in doc.get("last_pass") or []]
        status.services = {n: Step(**s) for n, s in (doc.get("services") or {}).items()}
        status.states = {str(k): str(v) for k, v in (doc.get("states") or {}).items()}
        status.recent.extend(Step(**s) for s in doc.get("recent") or [])
        return status


def load(hook: MemoryHook) -> Status | None:
    """The status the last pass saved where ``hook`` reads globs, or None."""
    text = hook.get_glob(STATUS_GLOB)
    return Status.from_json(text) if text else None
