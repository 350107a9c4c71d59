"""The cluster store on Redis: hashes for the registry, a fenced lock for the lease.

The lease is ``SET key "<holder>:<token>" NX PX ttl`` where the token comes from
``INCR`` on a counter that only grows, done in one Lua script with the renewal
(``PEXPIRE`` only if the value is still ours), so taking, renewing and fencing
are each atomic on the server. A claim is accepted only while the lease still
holds the claimer's token: a paused leader that wakes after losing the lease is
refused, even if it has not noticed yet.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jaseci_like.cluster.store import Holder, Seen

if TYPE_CHECKING:
    import redis

# KEYS: lease, token counter. ARGV: holder, ttl ms. The token, or false.
_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local h, t = string.match(cur, '^(.*):(%d+)$')
  if h == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(t)
  end
  return false
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. t, 'PX', ARGV[2])
return t
"""
# KEYS: lease. ARGV: "<holder>:<token>".
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: lease, claim. ARGV: "<holder>:<token>", ttl ms. 1 claimed, 0 taken, -1 fenced.
_CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
# KEYS: records, seen. ARGV: id, record. Stamped with the server's clock.
_PUT = """
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], t[1] .. '.' .. string.format('%06d', t[2]))
return 1
"""
#: Seconds an unanswered inbox or a request's answers are kept.
KEEP = 3600


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisStore:
    """Keys under ``<prefix>:cluster:``."""

    kind = "redis"

    def __init__(self, client: redis.Redis, prefix: str = "jaseci_like") -> None:
        self.client = client
        self.base = f"{prefix}:cluster"
        self.records_key = f"{self.base}:instances"
        self.seen_key = f"{self.base}:seen"
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._claim = client.register_script(_CLAIM)
        self._put = client.register_script(_PUT)

    def _lease_key(self, lease: str) -> str:
        return f"{self.base}:lease:{lease}"

    def put_instance(self, instance_id: str, record: dict[str, Any]) -> None:
        self._put(keys=[self.records_key, self.seen_key], args=[instance_id, json.dumps(record)])

    def remove_instance(self, instance_id: str) -> None:
        pipe = self.client.pipeline()
        pipe.hdel(self.records_key, instance_id)
        pipe.hdel(self.seen_key, instance_id)
        pipe.execute()

    def instances(self) -> list[Seen]:
        pipe = self.client.pipeline()
        pipe.time()
        pipe.hgetall(self.records_key)
        pipe.hgetall(self.seen_key)
        (sec, usec), records, seen = pipe.execute()
        now = sec + usec / 1e6
        stamps = {_text(k): float(_text(v)) for k, v in seen.items()}
        out = []
        for key, raw in records.items():
            at = stamps.get(_text(key))
            if at is not None:
                out.append(Seen(json.loads(_text(raw)), max(0.0, now - at)))
        return out

    def acquire(self, lease: str, holder: str, ttl: float) -> int | None:
        key = self._lease_key(lease)
        token = self._acquire(keys=[key, f"{key}:token"], args=[holder, int(ttl * 1000)])
        return None if token is None else int(token)

    def release(self, lease: str, holder: str, token: int) -> None:
        self._release(keys=[self._lease_key(lease)], args=[f"{holder}:{token}"])

    def holder(self, lease: str) -> Holder | None:
        pipe = self.client.pipeline()
        key = self._lease_key(lease)
        pipe.get(key)
        pipe.pttl(key)
        raw, pttl = pipe.execute()
        if raw is None:
            return None
        holder, _, token = _text(raw).rpartition(":")
        return Holder(holder, int(token), max(0, int(pttl)) / 1000)

    def claim(self, key: str, lease: str, holder: str, token: int, ttl: float) -> bool | None:
        done = self._claim(
            keys=[self._lease_key(lease), f"{self.base}:claim:{key}"],
            args=[f"{holder}:{token}", int(ttl * 1000)],
        )
        return None if int(done) < 0 else bool(int(done))

    def send(self, instance_id: str, request_id: str, body: dict[str, Any]) -> None:
        key = f"{self.base}:inbox:{instance_id}"
        pipe = self.client.pipeline()
        pipe.rpush(key, json.dumps({"id": request_id, "body": body}))
        pipe.expire(key, KEEP)
        pipe.execute()

    def receive(self, instance_id: str) -> list[tuple[str, dict[str, Any]]]:
        key = f"{self.base}:inbox:{instance_id}"
        pipe = self.client.pipeline()  # MULTI: nothing pushed between the read and the delete
        pipe.lrange(key, 0, -1)
        pipe.delete(key)
        raw, _ = pipe.execute()
        out = []
        for item in raw:
            doc = json.loads(_text(item))
            out.append((str(doc["id"]), dict(doc["body"])))
        return out

    def answer(self, request_id: str, instance_id: str, body: dict[str, Any]) -> None:
        key = f"{self.base}:answers:{request_id}"
        pipe = self.client.pipeline()
        pipe.hset(key, instance_id, json.dumps(body))
        pipe.expire(key, KEEP)
        pipe.execute()

    def answers(self, request_id: str) -> dict[str, dict[str, Any]]:
        raw = self.client.hgetall(f"{self.base}:answers:{request_id}")
        return {_text(k): json.loads(_text(v)) for k, v in raw.items()}
