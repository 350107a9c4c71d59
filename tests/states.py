"""What the lifecycle tests share."""

from __future__ import annotations

from jaseci_like import CommonService, ServiceState


def state_of(svc: CommonService) -> ServiceState:
    """The state now (a call, so mypy does not keep a narrowed state across calls)."""
    return svc.state
