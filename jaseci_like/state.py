"""The service lifecycle states and the moves allowed between them."""

from __future__ import annotations

import enum

from jaseci_like.errors import IllegalTransition


class ServiceState(enum.Enum):
    """Where a service is in its lifecycle (see :class:`CommonService` for the diagram)."""

    NOT_STARTED = "not_started"
    STARTED = "started"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    def can_move_to(self, target: ServiceState) -> bool:
        return target in _LEGAL[self]

    def check_move(self, target: ServiceState, who: str) -> None:
        if target not in _LEGAL[self]:
            allowed = ", ".join(s.name for s in _LEGAL[self]) or "nothing"
            raise IllegalTransition(
                f"{who}: cannot move from {self.name} to {target.name} "
                f"(from {self.name} only {allowed} is allowed)"
            )


_S = ServiceState
_LEGAL: dict[ServiceState, frozenset[ServiceState]] = {
    _S.NOT_STARTED: frozenset({_S.STARTED}),
    _S.STARTED: frozenset({_S.RUNNING, _S.FAILED}),
    _S.RUNNING: frozenset({_S.STOPPING, _S.FAILED}),
    _S.STOPPING: frozenset({_S.STOPPED}),
    _S.STOPPED: frozenset({_S.NOT_STARTED}),
    _S.FAILED: frozenset({_S.NOT_STARTED}),
}

#: Every legal (from, to) pair; tests and documentation read it.
LEGAL_MOVES: frozenset[tuple[ServiceState, ServiceState]] = frozenset(
    (a, b) for a, targets in _LEGAL.items() for b in targets
)
