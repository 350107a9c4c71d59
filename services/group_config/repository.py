"""Repositories: the db source's operations under standard names, made resilient.

Every operation runs through :class:`Resilience`: a transient database error
(lost connection, serialization failure, deadlock, "database is locked") runs
the whole transaction again with backoff; a domain error returns at once. Each
call is counted and timed as ``<entity>.<operation>`` by outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from jaseci_like_services.group_config.db_source import GroupConfigDbSource
from jaseci_like_services.group_config.types import (
    Domain,
    Dotfile,
    DotfileChanges,
    DotfileFilter,
    DotfileList,
    DotfileOrder,
    DotfileResult,
    DotfileSpec,
    Group,
    GroupRef,
    Guard,
    Role,
    Usage,
    User,
)

from jaseci_like.repository import (
    BulkResult,
    DomainScope,
    Page,
    Pagination,
    Resilience,
    SearchScope,
    UserScope,
    resilient,
)


class _Resilient:
    def __init__(self, source: GroupConfigDbSource, resilience: Resilience) -> None:
        self._source = source
        self._resilience = resilience

    @property
    def resilience(self) -> Resilience:
        return self._resilience


class DotfileRepository(_Resilient):
    """Dotfiles of a group: create, get, search, update, delete (soft), purge (hard),
    batch_* (one statement, atomic) and bulk_* (per item, partial failures)."""

    @resilient("dotfile.create")
    async def create(self, ref: GroupRef, guard: Guard, spec: DotfileSpec) -> DotfileResult:
        return await self._source.create_dotfile(ref, guard, spec)

    @resilient("dotfile.get")
    async def get(self, ref: GroupRef, guard: Guard, path: str) -> Dotfile:
        return await self._source.get_dotfile(ref, guard, path)

    @resilient("dotfile.search")
    async def search(
        self,
        ref: GroupRef,
        guard: Guard,
        where: DotfileFilter,
        order: DotfileOrder,
        pagination: Pagination,
    ) -> DotfileList:
        return await self._source.search_dotfiles(ref, guard, where, order, pagination)

    @resilient("dotfile.update")
    async def update(
        self, ref: GroupRef, guard: Guard, path: str, changes: DotfileChanges
    ) -> DotfileResult:
        return await self._source.update_dotfile(ref, guard, path, changes)

    @resilient("dotfile.delete")
    async def delete(self, ref: GroupRef, guard: Guard, path: str) -> Dotfile:
        return await self._source.delete_dotfile(ref, guard, path)

    @resilient("dotfile.purge")
    async def purge(self, ref: GroupRef, guard: Guard, path: str) -> int:
        return await self._source.purge_dotfile(ref, guard, path)

    @resilient("dotfile.batch_update")
    async def batch_update(
        self, ref: GroupRef, guard: Guard, paths: Sequence[str], changes: DotfileChanges
    ) -> int:
        return await self._source.batch_update_dotfiles(ref, guard, paths, changes)

    @resilient("dotfile.batch_delete")
    async def batch_delete(self, ref: GroupRef, guard: Guard, paths: Sequence[str]) -> int:
        return await self._source.batch_delete_dotfiles(ref, guard, paths)

    @resilient("dotfile.batch_purge")
    async def batch_purge(self, ref: GroupRef, guard: Guard, paths: Sequence[str]) -> int:
        return await self._source.batch_purge_dotfiles(ref, guard, paths)

    @resilient("dotfile.bulk_create")
    async def bulk_create(
        self, ref: GroupRef, guard: Guard, specs: Sequence[DotfileSpec]
    ) -> BulkResult[Dotfile]:
        return await self._source.bulk_create_dotfiles(ref, guard, specs)

    @resilient("dotfile.bulk_upsert")
    async def bulk_upsert(
        self, ref: GroupRef, guard: Guard, specs: Sequence[DotfileSpec]
    ) -> BulkResult[Dotfile]:
        return await self._source.bulk_upsert_dotfiles(ref, guard, specs)

    @resilient("dotfile.usage")
    async def usage(self, ref: GroupRef, guard: Guard) -> Usage:
        return await self._source.dotfile_usage(ref, guard)


class DomainRepository(_Resilient):
    @resilient("domain.create")
    async def create(self, name: str) -> Domain:
        return await self._source.create_domain(name)

    @resilient("domain.get")
    async def get(self, name: str, check: Callable[[str], None]) -> Domain:
        return await self._source.get_domain(name, check)

    @resilient("domain.search")
    async def search(self, scope: SearchScope | None, pagination: Pagination) -> Page[Domain]:
        return await self._source.search_domains(scope, pagination)

    @resilient("domain.purge")
    async def purge(self, name: str) -> None:
        await self._source.purge_domain(name)


class GroupRepository(_Resilient):
    """Groups and their memberships."""

    @resilient("group.create")
    async def create(self, domain: str, name: str, check: Callable[[str], None]) -> Group:
        return await self._source.create_group(domain, name, check)

    @resilient("group.get")
    async def get(self, ref: GroupRef, guard: Guard) -> Group:
        return await self._source.get_group(ref, guard)

    @resilient("group.search")
    async def search(self, scope: SearchScope | None, pagination: Pagination) -> Page[Group]:
        return await self._source.search_groups(scope, pagination)

    @resilient("group.update")
    async def update(self, ref: GroupRef, guard: Guard, name: str) -> Group:
        return await self._source.rename_group(ref, guard, name)

    @resilient("group.purge")
    async def purge(self, ref: GroupRef, guard: Guard) -> Group:
        return await self._source.purge_group(ref, guard)

    @resilient("membership.create")
    async def add_member(self, ref: GroupRef, guard: Guard, user: uuid.UUID | str) -> User:
        return await self._source.add_member(ref, guard, user)

    @resilient("membership.purge")
    async def remove_member(self, ref: GroupRef, guard: Guard, user: uuid.UUID | str) -> User:
        return await self._source.remove_member(ref, guard, user)

    @resilient("membership.search")
    async def members(self, ref: GroupRef, guard: Guard, pagination: Pagination) -> Page[User]:
        return await self._source.members(ref, guard, pagination)


class UserRepository(_Resilient):
    @resilient("user.create")
    async def create(
        self, email: str, role: Role, domain: str, check: Callable[[str, Role], None]
    ) -> User:
        return await self._source.create_user(email, role, domain, check)

    @resilient("user.get")
    async def get(self, key: uuid.UUID | str, check: Callable[[User], None]) -> User:
        return await self._source.get_user(key, check)

    @resilient("user.search")
    async def search(
        self, scope: DomainScope | UserScope | None, pagination: Pagination
    ) -> Page[User]:
        return await self._source.search_users(scope, pagination)

    @resilient("user.update")
    async def update_role(
        self, key: uuid.UUID | str, role: Role, check: Callable[[User, Role], None]
    ) -> User:
        return await self._source.update_user_role(key, role, check)

    @resilient("user.purge")
    async def purge(self, key: uuid.UUID | str, check: Callable[[User], None]) -> User:
        return await self._source.purge_user(key, check)
