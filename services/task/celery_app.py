"""The Celery application of a task service, configured from the ``task`` section.

Celery ships no type information: the modules that import it (``celery_*``,
``beat``, and the schedule helpers of ``config``) hand its objects on as ``Any``.
"""

from __future__ import annotations

from typing import Any

from jaseci_like_services.task.config import TaskConfig

#: The queue our tasks travel on, apart from any other Celery app on the broker.
QUEUE = "jaseci-like"
#: Seconds a worker's idle BRPOP waits; it bounds how long stopping the worker
#: waits for the broker connection to close (fractions need Redis >= 6).
BROKER_POLL = 0.25


def make_app(settings: TaskConfig) -> Any:
    """A ``celery.Celery`` for ``settings``, not made the process's current app.

    Embedded mode gets an app too (``app`` is a Celery app in both modes): it carries
    the config and beat's schedule, but tasks run on the service's own thread pool,
    so it has no broker to talk to.
    """
    from celery import Celery  # type: ignore[import-untyped]

    if settings.mode == "celery":
        app = Celery(
            "jaseci_like",
            broker=settings.broker_url,
            backend=settings.backend_url,
            set_as_current=False,
        )
    else:
        app = Celery("jaseci_like", broker="memory://", set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        result_expires=settings.result_ttl,
        enable_utc=True,
        timezone="UTC",
        # One task at a time per thread: what waits stays in Redis, where any
        # worker may take it and a cancel finds it unstarted.
        worker_prefetch_multiplier=1,
        # A worker inside a host process leaves the host's logging alone.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        # Celery 6.0's default; only tasks with late acks (none of ours) are affected.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_transport_options={"polling_interval": BROKER_POLL},
        redis_socket_connect_timeout=5.0,
    )
    return app
