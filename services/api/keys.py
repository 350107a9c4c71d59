"""API keys: issued once, stored as a hash, checked in constant time, revocable.

A key reads ``jlk_<id>_<secret>``: ``id`` (16 hex digits) names the key in
listings and for revoking; ``secret`` is 256 random bits. Only the SHA-256 of
the whole key is stored, so a leaked table gives no usable key.

A key found valid is remembered until a change that may alter it is committed,
by any process (``ApiDbSource.change_stamp``): on SQLite any commit (its
``data_version``); on PostgreSQL any change to the keys or the users, which a
trigger announces with NOTIFY at its commit, before the writer can answer. So a
revocation or a role change counts from the next request on, in every process.
While that cannot be told (the listener not up yet, or lost), every request
reads its key. A revocation made here forgets the remembered keys at once.

Who may issue, list or revoke a user's keys follows group_config's rule for
reading that user: the user themselves, an admin of their domain, a superadmin.

Work queued with a key (a background copy) carries the key's id, and each of its
transactions checks that the key is still its owner's and not revoked
(:class:`KeyInUse`, a group_config ``Credential``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Hashable
from dataclasses import dataclass

from jaseci_like_services.api.db_source import ApiDbSource
from jaseci_like_services.api.errors import KeyNotFound, KeyRevoked, Unauthorized
from jaseci_like_services.api.types import ApiKeyInfo, IssuedKey, KeyOwner
from jaseci_like_services.group_config.errors import InvalidInput
from jaseci_like_services.group_config.service import UserService, require_domain_admin
from jaseci_like_services.group_config.types import CurrentUser, Role

from jaseci_like.repository import ReadOps, Resilience, utcnow

log = logging.getLogger(__name__)

PREFIX = "jlk"
#: Longest header value worth hashing; anything longer is not one of our keys.
MAX_TOKEN = 200
MAX_LABEL = 64
#: Most keys remembered as valid between two commits to the database.
MAX_VERIFIED = 4096
_KEY_ID = re.compile(r"[0-9a-f]{16}")
#: Compared against when no key has the id given, so both answers take as long.
_NO_HASH = hashlib.sha256(b"no such key").hexdigest()

NO_KEY = (
    "no API key: send the header 'Authorization: Bearer <key>' with a key from "
    "`jaseci-like users create` or `jaseci-like api-keys create`"
)
BAD_KEY = "the API key is not valid: check that it was copied whole, or ask for a new one"
REVOKED_KEY = "this API key was revoked: ask for a new one (`jaseci-like api-keys create`)"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The id part of a well-formed key, or None."""
    if len(token) > MAX_TOKEN:
        return None
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not secret or not _KEY_ID.fullmatch(key_id):
        return None
    return key_id


@dataclass(frozen=True)
class KeyInUse:
    """The key work was queued with, as a group_config ``Credential``: the work goes
    on only while the key is still its submitter's and not revoked."""

    key_id: str

    async def verify(self, ops: ReadOps, user: CurrentUser) -> None:
        state = await ApiDbSource.key_state(ops, self.key_id)
        if state is None or state[0] != user.id or state[1]:
            raise KeyRevoked(
                f"API key {self.key_id}, which queued this work, was revoked; nothing "
                "more is done with it: queue the work again with a valid key"
            )


class ApiKeys:
    """Issue, authenticate, list and revoke keys (``async``; on the runtime loop)."""

    def __init__(self, source: ApiDbSource, resilience: Resilience, users: UserService) -> None:
        self._source = source
        self._resilience = resilience
        self._users = users
        #: Digest -> owner of keys found valid while the database's change stamp was
        #: ``_stamp``: any commit anywhere (a revocation, a role change) moves the
        #: stamp and forgets them all. Empty where the database gives no stamp.
        self._verified: dict[str, CurrentUser] = {}
        self._stamp: Hashable | None = None
        #: Revocations made by this process: part of the stamp, so one counts here at
        #: once, and a read that began before it is not remembered after it.
        self._revoked_here = 0
        #: Whether the database announces the changes that matter (asked once).
        self._announced: bool | None = None

    async def issue(
        self, user: uuid.UUID | str, *, actor: CurrentUser, label: str | None = None
    ) -> IssuedKey:
        """A new key for ``user`` (UUID or email); its token is in the result only."""
        if label is not None and not (0 < len(label) <= MAX_LABEL and label.isprintable()):
            raise InvalidInput(f"label {label!r}: give 1 to {MAX_LABEL} printable characters")
        owner = await self._users.get(user, user=actor)
        key_id = secrets.token_hex(8)
        token = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        info = ApiKeyInfo(key_id, owner.id, label, utcnow(), None)
        await self._resilience.call(
            "api_key.issue", lambda: self._source.insert_key(info, digest(token))
        )
        return IssuedKey(info, token)

    async def authenticate(self, token: str | None) -> CurrentUser:
        """The user a key belongs to; Unauthorized for no key, a bad one or a revoked one."""
        if not token:
            raise Unauthorized(NO_KEY)
        key_id = key_id_of(token)
        hashed = digest(token)
        record = None
        stamp: Hashable | None = None
        if key_id is not None:
            if self._announced is None:
                self._announced = await self._announcing()
            changes = self._source.change_stamp() if self._announced else None
            stamp = None if changes is None else (changes, self._revoked_here)
            if stamp is not None:
                if stamp == self._stamp:
                    known = self._verified.get(hashed)
                    if known is not None:
                        return known
                else:
                    self._verified.clear()
                    self._stamp = stamp
            record = await self._resilience.call(
                "api_key.authenticate", lambda: self._source.key_for_auth(key_id)
            )
        expected = record.key_hash if record is not None else _NO_HASH
        matches = hmac.compare_digest(hashed, expected)
        if record is None or not matches:
            raise Unauthorized(BAD_KEY)
        if record.revoked:
            raise Unauthorized(REVOKED_KEY)
        # Read under ``stamp``: kept only if no later stamp was seen meanwhile.
        if stamp is not None and stamp == self._stamp:
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()
            self._verified[hashed] = record.user
        return record.user

    async def _announcing(self) -> bool:
        announced = await self._resilience.call("api_key.announced", self._source.changes_announced)
        if not announced:
            log.warning(
                "api: this database does not announce changes to API keys (the trigger of "
                "migration 0002_api_key_changes is missing; run `jaseci-like db upgrade`): "
                "every request reads its key"
            )
        return announced

    async def revoke(self, key_id: str, *, actor: CurrentUser) -> ApiKeyInfo:
        """Revoke key ``key_id`` (its owner, an admin of the owner's domain, a superadmin)."""

        def check(owner: KeyOwner) -> None:
            if owner.info.user_id != actor.id:
                require_domain_admin(actor, owner.domain)

        found = None
        if _KEY_ID.fullmatch(key_id):
            found = await self._resilience.call(
                "api_key.revoke", lambda: self._source.revoke_key(key_id, utcnow(), check)
            )
        if found is None:
            raise KeyNotFound(f"no API key with id {key_id!r} (see `jaseci-like api-keys list`)")
        self._revoked_here += 1
        self._verified.clear()
        return found

    async def list(
        self, user: uuid.UUID | str | None = None, *, actor: CurrentUser
    ) -> list[ApiKeyInfo]:
        """The keys of ``user``; None: every key for a superadmin, one's own otherwise."""
        if user is None:
            owner_id = None if actor.role is Role.SUPERADMIN else actor.id
        else:
            owner_id = (await self._users.get(user, user=actor)).id
        return await self._resilience.call("api_key.list", lambda: self._source.list_keys(owner_id))
