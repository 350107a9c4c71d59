"""API keys: issued once, stored as a hash, checked in constant time, revocable.

A key reads ``jlk_<id>_<secret>``: ``id`` (16 hex digits) names the key in
listings and for revoking; ``secret`` is 256 random bits. Only the SHA-256 of
the whole key is stored, so a leaked table gives no usable key.

A key found valid is remembered until anything is next committed to the
database, by any process (``DbOps.change_stamp``: SQLite's ``data_version``), so
a revocation or a role change counts from the next request on; PostgreSQL gives
no such stamp, and there every request reads its key.

Who may issue, list or revoke a user's keys follows group_config's rule for
reading that user: the user themselves, an admin of their domain, a superadmin.

Work queued with a key (a background copy) carries the key's id, and each of its
transactions checks that the key is still its owner's and not revoked
(:class:`KeyInUse`, a group_config ``Credential``).
"""

from __future__ import annotations

import hashlib
import hmac
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
        record = stamp = None
        if key_id is not None:
            stamp = self._source.change_stamp()
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
