"""``config refresh NAME`` across the system: asked of every live instance through
its inbox, done only where NAME runs, answered per instance."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jaseci_like.cluster.store import ClusterStore
from jaseci_like.cluster.view import read_cluster
from jaseci_like.errors import ServiceStartError
from jaseci_like.supervisor import describe_failure

if TYPE_CHECKING:
    from jaseci_like.hooks.memory import MemoryHook

#: Outcomes of one instance: reset here; not run here (left alone); failed; silent.
RESET, SKIPPED, FAILED, NO_ANSWER = "reset", "skipped", "failed", "no answer"
#: Seconds between two looks at the answers.
_POLL = 0.05


@dataclass(frozen=True)
class RefreshOutcome:
    instance: str
    host: str
    role: str
    outcome: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.outcome in (RESET, SKIPPED)


def refresh_here(hook: MemoryHook, name: str) -> dict[str, Any]:
    """Reset ``name`` in this runtime only if it runs here (is one of the services
    this runtime started); never start it where it was not. The answer, masked."""
    from jaseci_like.config_api import ConfigApi

    api = ConfigApi(hook)
    service_name = api.service_class(name).service_name()
    if service_name not in hook.services:
        return {"outcome": SKIPPED, "detail": "not run by this instance"}
    try:
        service = api.config_refresh(service_name)
    except ServiceStartError as exc:  # the running one was kept
        return {"outcome": FAILED, "detail": describe_failure(exc)}
    service = hook.services.get(service_name, service)
    if service is None:
        return {"outcome": FAILED, "detail": "no instance after the reset"}
    if service.enabled and not service.is_running():
        why = describe_failure(service.error, service) or service.state.name
        return {"outcome": FAILED, "detail": why}
    return {"outcome": RESET, "detail": service.state.name if service.enabled else "disabled"}


def request_refresh(store: ClusterStore, name: str, timeout: float) -> list[RefreshOutcome]:
    """Ask every live instance to refresh ``name``; wait up to ``timeout`` seconds for
    their answers. An instance that did not answer in time is NO_ANSWER."""
    live = [i for i in read_cluster(store).instances if not i.lost]
    request_id = uuid.uuid4().hex
    for instance in live:
        store.send(instance.id, request_id, {"refresh": name})
    deadline = time.monotonic() + timeout
    answers = store.answers(request_id)
    while len(answers) < len(live) and time.monotonic() < deadline:
        time.sleep(_POLL)  # polling the store: nothing to wait on across processes
        answers = store.answers(request_id)
    out = []
    for instance in live:
        answer = answers.get(instance.id)
        outcome = str(answer.get("outcome")) if answer else NO_ANSWER
        detail = str(answer.get("detail") or "") if answer else f"none within {timeout:g}s"
        out.append(
            RefreshOutcome(
                instance.id,
                str(instance.record.get("host")),
                str(instance.record.get("role")),
                outcome,
                detail,
            )
        )
    return out
