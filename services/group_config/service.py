"""Who may do what, and the input rules: the service layer of group config.

The acting user comes from ``user=`` or, when not given, from the
``current_user`` context variable (see :mod:`.identity`). Rules:

- superadmin: anything;
- admin: reads and writes groups (and their dotfiles, members and users) of
  their own domain;
- user: reads the dotfiles of groups they belong to, writes none;
- anyone else: Forbidden. The group is resolved first, so an unknown group is
  GroupNotFound for every role, and the whole operation is one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from jaseci_like_services.group_config.errors import Forbidden, InvalidInput
from jaseci_like_services.group_config.identity import resolve_user
from jaseci_like_services.group_config.repository import (
    DomainRepository,
    DotfileRepository,
    GroupRepository,
    UserRepository,
)
from jaseci_like_services.group_config.types import (
    Actor,
    CurrentUser,
    Domain,
    Dotfile,
    DotfileChanges,
    DotfileFilter,
    DotfileList,
    DotfileOrder,
    DotfileResult,
    DotfileSpec,
    Group,
    GroupAccess,
    GroupRef,
    Role,
    Submitter,
    Usage,
    User,
)
from jaseci_like_services.group_config.validation import (
    validate_data,
    validate_lookup_path,
    validate_path,
    validate_permission,
)

from jaseci_like.repository import (
    UNSET,
    BulkFailure,
    BulkResult,
    DomainScope,
    OffsetPagination,
    Page,
    Pagination,
    SearchScope,
    UserScope,
)

T = TypeVar("T")
K = TypeVar("K")

#: Most items one batch or bulk call may carry.
MAX_BATCH = 1000
MAX_NAME = 64
GroupKey = GroupRef | uuid.UUID | str
UserKey = uuid.UUID | str


# -- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupPermission:
    """The guard the db source runs once the group is resolved (see ``Guard``).

    For a :class:`Submitter` the db source first re-reads them in the same
    transaction (``judging``), so queued work is judged by these very rules, as
    the user is when it runs.
    """

    actor: Actor
    write: bool

    @property
    def submitter(self) -> Submitter | None:
        return self.actor if isinstance(self.actor, Submitter) else None

    def judging(self, user: CurrentUser) -> GroupPermission:
        return GroupPermission(user, self.write)

    @property
    def member_id(self) -> uuid.UUID | None:
        # Only a plain user's read depends on membership; skip the lookup otherwise.
        actor = self.actor
        if isinstance(actor, CurrentUser) and actor.role is Role.USER and not self.write:
            return actor.id
        return None

    def check(self, access: GroupAccess) -> None:
        actor, group = self.actor, access.group
        if not isinstance(actor, CurrentUser):
            # A guard the db source did not judge first: refuse rather than guess.
            raise Forbidden(f"user {actor.id} was not re-read before acting; nothing done")
        if actor.role is Role.SUPERADMIN:
            return
        if actor.role is Role.ADMIN:
            if group.domain == actor.domain:
                return
            raise Forbidden(
                f"admins of domain {actor.domain!r} may not access group {group.name!r} "
                f"of domain {group.domain!r}"
            )
        if self.write:
            raise Forbidden(
                f"users may not change group {group.name!r}; ask an admin of its domain"
            )
        if not access.is_member:
            raise Forbidden(f"you are not a member of group {group.name!r}")


def require_domain_admin(actor: CurrentUser, domain: str) -> None:
    """Superadmin, or admin of ``domain``; else Forbidden."""
    if actor.role is Role.SUPERADMIN:
        return
    if actor.role is Role.ADMIN and actor.domain == domain:
        return
    raise Forbidden(f"only a superadmin or an admin of domain {domain!r} may do this")


def require_superadmin(actor: CurrentUser) -> None:
    if actor.role is not Role.SUPERADMIN:
        raise Forbidden("only a superadmin may do this")


def validate_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _text(value, what).strip() or len(value) > MAX_NAME:
        raise InvalidInput(f"{what} {value!r}: give 1 to {MAX_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or "/" in value:
        raise InvalidInput(f"{what} {value!r}: no control characters or '/'")
    try:
        uuid.UUID(value)
    except ValueError:
        return value
    raise InvalidInput(f"{what} {value!r}: a name must not look like a UUID")


def _batch(items: Sequence[T], what: str) -> Sequence[T]:
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"{len(items)} {what}: at most {MAX_BATCH} in one call")
    return items


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(f"role {value!r}: one of {', '.join(r.value for r in Role)}") from None


# -- services ---------------------------------------------------------------------------------


def _ref(group: GroupKey, domain: str | None, actor: Actor) -> GroupRef:
    """The group named: by UUID, or by name in ``domain`` (default: the actor's)."""
    named = _key(group, "group")
    return GroupRef.parse(named, _optional_text(domain, "domain")).within(actor.domain)


class DotfileService:
    """Dotfiles of a group, with the rules of DESIGN.md.

    ``user`` may be a :class:`Submitter` (work queued earlier): each call then
    judges them as they are in its own transaction.
    """

    def __init__(self, repository: DotfileRepository) -> None:
        self.repository = repository

    async def create(
        self,
        group: GroupKey,
        spec: DotfileSpec,
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> DotfileResult:
        actor = resolve_user(user)
        spec = self._checked(spec)
        ref = _ref(group, domain, actor)
        return await self.repository.create(ref, GroupPermission(actor, True), spec)

    async def get(
        self,
        group: GroupKey,
        path: str,
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> Dotfile:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.get(
            ref, GroupPermission(actor, False), validate_lookup_path(path)
        )

    async def search(
        self,
        group: GroupKey,
        *,
        path_prefix: str | None = None,
        order: DotfileOrder = DotfileOrder.CREATED,
        pagination: Pagination | None = None,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> DotfileList:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        page = pagination if pagination is not None else OffsetPagination()
        where = DotfileFilter(
            path_prefix=_text(path_prefix, "path prefix") if path_prefix else None
        )
        try:
            ordering = DotfileOrder(order)
        except ValueError:
            choices = ", ".join(o.value for o in DotfileOrder)
            raise InvalidInput(f"order {order!r}: one of {choices}") from None
        return await self.repository.search(
            ref, GroupPermission(actor, False), where, ordering, page
        )

    async def update(
        self,
        group: GroupKey,
        path: str,
        changes: DotfileChanges,
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> DotfileResult:
        actor = resolve_user(user)
        changes = self._checked_changes(changes)
        ref = _ref(group, domain, actor)
        return await self.repository.update(
            ref, GroupPermission(actor, True), validate_lookup_path(path), changes
        )

    async def delete(
        self,
        group: GroupKey,
        path: str,
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> Dotfile:
        """Soft delete: the path is free again, the row is kept as ``deleted``."""
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.delete(
            ref, GroupPermission(actor, True), validate_lookup_path(path)
        )

    async def purge(
        self,
        group: GroupKey,
        path: str,
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> int:
        """Hard delete of the path's rows (active and deleted); returns how many."""
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.purge(
            ref, GroupPermission(actor, True), validate_lookup_path(path)
        )

    async def usage(
        self, group: GroupKey, *, domain: str | None = None, user: Actor | None = None
    ) -> Usage:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.usage(ref, GroupPermission(actor, False))

    async def batch_update(
        self,
        group: GroupKey,
        paths: Sequence[str],
        changes: DotfileChanges,
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> int:
        """One atomic UPDATE of the given active paths; returns how many changed."""
        actor = resolve_user(user)
        changes = self._checked_changes(changes)
        ref = _ref(group, domain, actor)
        paths = [validate_lookup_path(p) for p in _batch(paths, "paths")]
        return await self.repository.batch_update(ref, GroupPermission(actor, True), paths, changes)

    async def batch_delete(
        self,
        group: GroupKey,
        paths: Sequence[str],
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> int:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        paths = [validate_lookup_path(p) for p in _batch(paths, "paths")]
        return await self.repository.batch_delete(ref, GroupPermission(actor, True), paths)

    async def batch_purge(
        self,
        group: GroupKey,
        paths: Sequence[str],
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> int:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        paths = [validate_lookup_path(p) for p in _batch(paths, "paths")]
        return await self.repository.batch_purge(ref, GroupPermission(actor, True), paths)

    async def bulk_create(
        self,
        group: GroupKey,
        specs: Sequence[DotfileSpec],
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> BulkResult[Dotfile]:
        """Each spec on its own: invalid, duplicate or over-limit ones come back as failures."""
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        valid, failures = self._split(_batch(specs, "dotfiles"))
        result = await self.repository.bulk_create(
            ref, GroupPermission(actor, True), [s for _, s in valid]
        )
        return _merge(valid, failures, result)

    async def bulk_upsert(
        self,
        group: GroupKey,
        specs: Sequence[DotfileSpec],
        *,
        domain: str | None = None,
        user: Actor | None = None,
    ) -> BulkResult[Dotfile]:
        """Create or replace each spec on its own; failures come back with their index."""
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        valid, failures = self._split(_batch(specs, "dotfiles"))
        result = await self.repository.bulk_upsert(
            ref, GroupPermission(actor, True), [s for _, s in valid]
        )
        return _merge(valid, failures, result)

    # -- input --------------------------------------------------------------------------------

    @staticmethod
    def _checked(spec: DotfileSpec) -> DotfileSpec:
        validate_path(spec.path)
        validate_permission(spec.permission)
        validate_data(spec.data)
        return spec

    @staticmethod
    def _checked_changes(changes: DotfileChanges) -> DotfileChanges:
        if changes.permission is UNSET and changes.data is UNSET:
            raise InvalidInput("nothing to change: give data, permission or both")
        if changes.permission is not UNSET:
            validate_permission(changes.permission)
        if changes.data is not UNSET:
            validate_data(changes.data)
        return changes

    def _split(
        self, specs: Sequence[DotfileSpec]
    ) -> tuple[list[tuple[int, DotfileSpec]], list[BulkFailure]]:
        valid: list[tuple[int, DotfileSpec]] = []
        failures: list[BulkFailure] = []
        for index, spec in enumerate(specs):
            try:
                valid.append((index, self._checked(spec)))
            except InvalidInput as exc:
                failures.append(BulkFailure(index, exc))
        return valid, failures


def _text(value: object, what: str = "text") -> str:
    """``value`` if it is text a database can take: no NUL, and UTF-8 encodable (a
    lone surrogate, from JSON's "\\ud800" or a non-UTF-8 argument, is not)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what}: expected text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = ascii(value[:100])
        raise InvalidInput(
            f"{what} {shown}: not valid Unicode text (not UTF-8 encodable)"
        ) from None
    if "\x00" in value:
        raise InvalidInput(f"{what} {value[:100]!r}: NUL characters are not allowed")
    return value


def _optional_text(value: str | None, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _key(value: K, what: str) -> K:
    """A group or user key: a UUID or ref as it is, text checked like any text."""
    if isinstance(value, str):
        _text(value, what)
    return value


def _merge(
    valid: list[tuple[int, DotfileSpec]], refused: list[BulkFailure], result: BulkResult[T]
) -> BulkResult[T]:
    """Put the indices of the specs sent down back to those of the caller's list."""
    index_of = [original for original, _ in valid]
    succeeded = tuple((index_of[i], item) for i, item in result.succeeded)
    failures = refused + [BulkFailure(index_of[f.index], f.error) for f in result.failures]
    return BulkResult(succeeded, tuple(sorted(failures, key=lambda f: f.index)))


class DomainService:
    def __init__(self, repository: DomainRepository) -> None:
        self.repository = repository

    async def create(self, name: str, *, user: CurrentUser | None = None) -> Domain:
        require_superadmin(resolve_user(user))
        return await self.repository.create(validate_name(name, "domain"))

    async def get(self, name: str, *, user: CurrentUser | None = None) -> Domain:
        actor = resolve_user(user)

        def check(domain: str) -> None:
            if actor.role is not Role.SUPERADMIN and actor.domain != domain:
                raise Forbidden(f"you may only see your own domain {actor.domain!r}")

        return await self.repository.get(_text(name, "domain"), check)

    async def search(
        self, *, pagination: Pagination | None = None, user: CurrentUser | None = None
    ) -> Page[Domain]:
        actor = resolve_user(user)
        scope = None if actor.role is Role.SUPERADMIN else DomainScope(actor.domain)
        return await self.repository.search(scope, pagination or OffsetPagination())

    async def purge(self, name: str, *, user: CurrentUser | None = None) -> None:
        require_superadmin(resolve_user(user))
        await self.repository.purge(_text(name, "domain"))


class GroupService:
    """Groups and memberships."""

    def __init__(self, repository: GroupRepository) -> None:
        self.repository = repository

    async def create(
        self, name: str, *, domain: str | None = None, user: CurrentUser | None = None
    ) -> Group:
        actor = resolve_user(user)
        target = actor.domain if domain is None else _text(domain, "domain")
        return await self.repository.create(
            target, validate_name(name, "group name"), lambda d: require_domain_admin(actor, d)
        )

    async def get(
        self, group: GroupKey, *, domain: str | None = None, user: CurrentUser | None = None
    ) -> Group:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.get(ref, GroupPermission(actor, False))

    async def search(
        self,
        *,
        domain: str | None = None,
        pagination: Pagination | None = None,
        user: CurrentUser | None = None,
    ) -> Page[Group]:
        """Superadmin: every group (or one domain's); admin: their domain's; user: theirs."""
        actor = resolve_user(user)
        scope: SearchScope | None
        if actor.role is Role.SUPERADMIN:
            scope = DomainScope(_text(domain, "domain")) if domain is not None else None
        elif domain is not None and domain != actor.domain:
            raise Forbidden(f"you may only list groups of your own domain {actor.domain!r}")
        elif actor.role is Role.ADMIN:
            scope = DomainScope(actor.domain)
        else:
            scope = UserScope(actor.id)
        return await self.repository.search(scope, pagination or OffsetPagination())

    async def rename(
        self,
        group: GroupKey,
        name: str,
        *,
        domain: str | None = None,
        user: CurrentUser | None = None,
    ) -> Group:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        new = validate_name(name, "group name")
        return await self.repository.update(ref, GroupPermission(actor, True), new)

    async def purge(
        self, group: GroupKey, *, domain: str | None = None, user: CurrentUser | None = None
    ) -> Group:
        """Removes the group, its memberships and its dotfiles."""
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.purge(ref, GroupPermission(actor, True))

    async def add_member(
        self,
        group: GroupKey,
        member: UserKey,
        *,
        domain: str | None = None,
        user: CurrentUser | None = None,
    ) -> User:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.add_member(
            ref, GroupPermission(actor, True), _key(member, "user")
        )

    async def remove_member(
        self,
        group: GroupKey,
        member: UserKey,
        *,
        domain: str | None = None,
        user: CurrentUser | None = None,
    ) -> User:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.remove_member(
            ref, GroupPermission(actor, True), _key(member, "user")
        )

    async def members(
        self,
        group: GroupKey,
        *,
        domain: str | None = None,
        pagination: Pagination | None = None,
        user: CurrentUser | None = None,
    ) -> Page[User]:
        actor = resolve_user(user)
        ref = _ref(group, domain, actor)
        return await self.repository.members(
            ref, GroupPermission(actor, False), pagination or OffsetPagination()
        )


class UserService:
    def __init__(self, repository: UserRepository) -> None:
        self.repository = repository

    async def create(
        self,
        email: str,
        role: Role | str = Role.USER,
        *,
        domain: str | None = None,
        user: CurrentUser | None = None,
    ) -> User:
        """Superadmin: anyone anywhere; admin: users and admins of their own domain."""
        actor = resolve_user(user)
        target = actor.domain if domain is None else _text(domain, "domain")
        if (
            not isinstance(email, str)
            or "@" not in _text(email, "email")
            or not 3 <= len(email) <= 255
        ):
            raise InvalidInput(f"email {email!r}: give an address like ada@example.org")

        def check(domain_name: str, new_role: Role) -> None:
            require_domain_admin(actor, domain_name)
            if new_role is Role.SUPERADMIN:
                require_superadmin(actor)

        return await self.repository.create(email, _role(role), target, check)

    async def get(self, key: UserKey, *, user: CurrentUser | None = None) -> User:
        """Superadmin: anyone; admin: users of their domain; user: themselves."""
        actor = resolve_user(user)

        def check(found: User) -> None:
            if found.id != actor.id:
                require_domain_admin(actor, found.domain)

        return await self.repository.get(_key(key, "user"), check)

    async def identity(self, key: UserKey) -> CurrentUser:
        """The identity of a user, for a caller that has authenticated them (an API key,
        the command line's ``--as``). Not an authorization-checked read."""
        return (await self.repository.get(_key(key, "user"), lambda found: None)).identity()

    async def search(
        self,
        *,
        domain: str | None = None,
        pagination: Pagination | None = None,
        user: CurrentUser | None = None,
    ) -> Page[User]:
        actor = resolve_user(user)
        scope: DomainScope | UserScope | None
        if actor.role is Role.SUPERADMIN:
            scope = DomainScope(_text(domain, "domain")) if domain is not None else None
        elif domain is not None and domain != actor.domain:
            raise Forbidden(f"you may only list users of your own domain {actor.domain!r}")
        elif actor.role is Role.ADMIN:
            scope = DomainScope(actor.domain)
        else:
            scope = UserScope(actor.id)
        return await self.repository.search(scope, pagination or OffsetPagination())

    async def set_role(
        self, key: UserKey, role: Role | str, *, user: CurrentUser | None = None
    ) -> User:
        actor = resolve_user(user)

        def check(found: User, new_role: Role) -> None:
            require_domain_admin(actor, found.domain)
            if Role.SUPERADMIN in (found.role, new_role):
                require_superadmin(actor)

        return await self.repository.update_role(_key(key, "user"), _role(role), check)

    async def purge(self, key: UserKey, *, user: CurrentUser | None = None) -> User:
        actor = resolve_user(user)

        def check(found: User) -> None:
            require_domain_admin(actor, found.domain)
            if found.role is Role.SUPERADMIN:
                require_superadmin(actor)

        return await self.repository.purge(_key(key, "user"), check)
