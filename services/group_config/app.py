"""``GroupConfig``: the service's ``app``. Async services, and a blocking facade.

Async code (on the runtime loop) awaits ``app.dotfiles.create(...)``;
synchronous code calls ``app.sync.dotfiles.create(...)``, which runs the same
coroutine on the loop and waits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property

from jaseci_like_services.group_config.blocking import Facade, blocking
from jaseci_like_services.group_config.db_source import GroupConfigDbSource
from jaseci_like_services.group_config.repository import (
    DomainRepository,
    DotfileRepository,
    GroupRepository,
    UserRepository,
)
from jaseci_like_services.group_config.service import (
    DomainService,
    DotfileService,
    GroupService,
    UserService,
)
from jaseci_like_services.group_config.types import CurrentUser, Limits
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from jaseci_like.loop import RuntimeLoop
from jaseci_like.repository import OperationMetrics, Resilience, RetryEvent, RetryPolicy

METRICS_PREFIX = "group_config"


class GroupConfig:
    """Dotfiles, groups, users and domains over one engine, with one set of metrics."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        registry: CollectorRegistry | None = None,
        on_retry: Callable[[RetryEvent], Awaitable[None]] | None = None,
        loop: RuntimeLoop | None = None,
        default_domain: str = "default",
    ) -> None:
        self.engine = engine
        self.limits = limits if limits is not None else Limits()
        self.metrics = OperationMetrics(METRICS_PREFIX, registry)
        # A database still down after the retries is one typed, retriable error
        # (database_unavailable, HTTP 503), not the driver's own.
        self.resilience = Resilience(self.metrics, retry, on_retry, typed_unavailable=True)
        self.default_domain = default_domain
        self._source = source = GroupConfigDbSource(engine, self.limits)
        self.dotfiles = DotfileService(DotfileRepository(source, self.resilience))
        self.groups = GroupService(GroupRepository(source, self.resilience))
        self.users = UserService(UserRepository(source, self.resilience))
        self.domains = DomainService(DomainRepository(source, self.resilience))
        self._loop = loop

    @cached_property
    def sync(self) -> BlockingGroupConfig:
        """The blocking facade (needs the runtime loop given at construction)."""
        if self._loop is None:
            raise RuntimeError("this GroupConfig has no runtime loop; pass loop= to use .sync")
        return BlockingGroupConfig(self, self._loop)

    def system_user(self) -> CurrentUser:
        """The local operator's identity (a superadmin in the default domain)."""
        return CurrentUser.system(self.default_domain)

    async def prepare(self) -> None:
        """At service start: the tables answer, and the default domain exists."""
        await self._source.ensure_domain(self.default_domain)

    async def ping(self) -> bool:
        """The tables are there and answer (a migration that did not run fails here)."""
        return await self._source.ping()


class BlockingDotfiles(Facade[DotfileService]):
    create = blocking(DotfileService.create)
    get = blocking(DotfileService.get)
    search = blocking(DotfileService.search)
    update = blocking(DotfileService.update)
    delete = blocking(DotfileService.delete)
    purge = blocking(DotfileService.purge)
    usage = blocking(DotfileService.usage)
    batch_update = blocking(DotfileService.batch_update)
    batch_delete = blocking(DotfileService.batch_delete)
    batch_purge = blocking(DotfileService.batch_purge)
    bulk_create = blocking(DotfileService.bulk_create)
    bulk_upsert = blocking(DotfileService.bulk_upsert)


class BlockingGroups(Facade[GroupService]):
    create = blocking(GroupService.create)
    get = blocking(GroupService.get)
    search = blocking(GroupService.search)
    rename = blocking(GroupService.rename)
    purge = blocking(GroupService.purge)
    add_member = blocking(GroupService.add_member)
    remove_member = blocking(GroupService.remove_member)
    members = blocking(GroupService.members)


class BlockingUsers(Facade[UserService]):
    create = blocking(UserService.create)
    get = blocking(UserService.get)
    identity = blocking(UserService.identity)
    search = blocking(UserService.search)
    set_role = blocking(UserService.set_role)
    purge = blocking(UserService.purge)


class BlockingDomains(Facade[DomainService]):
    create = blocking(DomainService.create)
    get = blocking(DomainService.get)
    search = blocking(DomainService.search)
    purge = blocking(DomainService.purge)


class BlockingGroupConfig:
    """``app.sync``: the same services, blocking, for synchronous callers."""

    def __init__(self, app: GroupConfig, loop: RuntimeLoop) -> None:
        self.dotfiles = BlockingDotfiles(app.dotfiles, loop)
        self.groups = BlockingGroups(app.groups, loop)
        self.users = BlockingUsers(app.users, loop)
        self.domains = BlockingDomains(app.domains, loop)
