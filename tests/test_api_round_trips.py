"""What one API request costs the database, counted with SQLAlchemy engine events
(``tests/round_trips.py``), and the verified-key cache across processes on PostgreSQL.

A listing is ONE round trip to PostgreSQL (one statement, in autocommit, on a
connection that is not pinged while in use) and ONE call on the SQLite reader;
a remembered key costs none. Two runtimes on one PostgreSQL database remember
keys each, and a revocation or a demotion committed through one, or by hand
with ``psql``, is NOTIFYed by a trigger at its commit: the other refuses the key
on its next request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from jaseci_like_services.group_config import Role

from tests.api_support import ROLES, ApiRig, api_rig, error_of
from tests.group_config_fixtures import ROOT
from tests.round_trips import RoundTrips, in_http_request
from tests.servers import PostgresServer

#: Seconds a notification may take to reach a listener when no request waits on it.
DELIVERY = 5.0


def _listing(rig: ApiRig) -> str:
    assert rig.world is not None
    return f"/v1/groups/{rig.world.group.name}/dotfiles?domain={rig.world.group.domain}"


def _listening(rig: ApiRig) -> None:
    """Wait until the rig's key cache can tell changes (PostgreSQL: its listener is up),
    after its first check (which asks, once, whether the database announces them)."""
    keys: Any = rig.api.keys
    rig.run(keys.authenticate(rig.keys["superadmin"]))
    deadline = time.monotonic() + DELIVERY
    while rig.run(_stamp(keys)) is None:
        assert time.monotonic() < deadline, "the key cache never started listening"
        time.sleep(0.01)


async def _stamp(keys: Any) -> object:
    return keys._source.change_stamp()


@pytest.fixture(scope="module")
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    postgres_server.start()
    name = f"t_{uuid.uuid4().hex}"
    try:
        yield postgres_server.create_database(name)
    finally:
        postgres_server.start()
        postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def two(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiRig, ApiRig]]:
    """Two runtimes on one PostgreSQL database: A seeds it and issues the keys."""
    with ExitStack() as stack:
        a = stack.enter_context(api_rig(tmp_path_factory.mktemp("api-a"), db_url=pg_url))
        b = stack.enter_context(api_rig(tmp_path_factory.mktemp("api-b"), db_url=pg_url))
        a.seed()
        b.world = a.world
        b.keys = a.keys
        yield a, b


@pytest.fixture(scope="module")
def sqlite_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    with api_rig(tmp_path_factory.mktemp("api-sqlite")) as rig:
        rig.seed()
        yield rig


# -- round trips -----------------------------------------------------------------------------


def _trips_per_listing(rig: ApiRig, role: str, requests: int = 5) -> list[list[str]]:
    """The calls each of ``requests`` listings made, after a warm-up (pooled connections,
    prepared statements, the key remembered)."""
    calls = []
    with rig.as_role(role) as client:
        for _ in range(3):
            assert client.get(_listing(rig)).status_code == 200
        for _ in range(requests):
            with RoundTrips(rig.engine, only=in_http_request) as trips:
                answer = client.get(_listing(rig))
            assert answer.status_code == 200, answer.text
            calls.append(list(trips.calls))
    return calls


@pytest.mark.parametrize("role", ["superadmin", "member"])
def test_a_listing_is_one_round_trip_to_postgresql(two: tuple[ApiRig, ApiRig], role: str) -> None:
    a, _ = two
    _listening(a)
    # The member's listing checks the membership too: in the same statement.
    assert _trips_per_listing(a, role) == [["statement"]] * 5


def test_a_listing_is_one_call_on_the_sqlite_reader(sqlite_rig: ApiRig) -> None:
    assert _trips_per_listing(sqlite_rig, "member") == [["statement"]] * 5


# -- keys across processes --------------------------------------------------------------------


def _key_reads(rig: ApiRig, key: str, path: str) -> tuple[int, list[str]]:
    """One request with ``key``: its status and the calls it made."""
    with rig.client(key) as client, RoundTrips(rig.engine, only=in_http_request) as trips:
        status = client.get(path).status_code
    return status, list(trips.calls)


def test_a_key_revoked_through_one_runtime_is_refused_by_the_other_next(
    two: tuple[ApiRig, ApiRig],
) -> None:
    a, b = two
    assert a.world is not None
    _listening(b)
    key = a.issue_key(a.world.member)
    path = _listing(b)
    assert _key_reads(b, key, path) == (200, ["statement", "statement"])  # key, listing
    assert _key_reads(b, key, path) == (200, ["statement"]), "the key was not remembered"
    a.run(a.api.keys.revoke(key.split("_")[1], actor=ROOT))
    with b.client(key) as client:
        refused = client.get(path)
    assert error_of(refused) == (401, "unauthorized")
    assert "revoked" in refused.json()["message"]


def test_a_demotion_through_one_runtime_counts_in_the_other_next(
    two: tuple[ApiRig, ApiRig],
) -> None:
    a, b = two
    assert a.world is not None
    _listening(b)
    email = f"{uuid.uuid4().hex[:8]}@acme.test"
    user = a.run(a.app.users.create(email, Role.ADMIN, user=ROOT))
    key = a.issue_key(user.id)
    target = f"{_listing(b).split('?')[0]}/.demoted?domain=acme"
    with b.client(key) as client:
        assert client.put(target, json={"data": "x"}).status_code == 201
        assert client.delete(target).status_code == 204  # remembered meanwhile
        with a.as_role("superadmin") as root:
            demoted = root.patch(f"/v1/users/{user.id}", json={"role": "user"})
        assert demoted.status_code == 200, demoted.text
        assert error_of(client.put(target, json={"data": "x"})) == (403, "forbidden")


def test_a_key_revoked_by_hand_is_refused_by_every_runtime(
    two: tuple[ApiRig, ApiRig], postgres_server: PostgresServer, pg_url: str
) -> None:
    """No runtime made the change: the trigger tells them all."""
    a, _ = two
    assert a.world is not None
    key = a.issue_key(a.world.outsider)
    for rig in two:
        _listening(rig)
        assert _key_reads(rig, key, "/v1/users/me") == (200, ["statement", "statement"])
        assert _key_reads(rig, key, "/v1/users/me") == (200, ["statement"]), "not remembered"
    database = pg_url.rsplit("/", 1)[1]
    postgres_server.psql(
        f"UPDATE api_keys SET revoked_at = now() WHERE id = '{key.split('_')[1]}'",
        dbname=database,
    )
    for rig in two:
        deadline = time.monotonic() + DELIVERY
        while (status := _key_reads(rig, key, "/v1/users/me")[0]) == 200:
            assert time.monotonic() < deadline, "the revocation never reached the runtime"
        assert status == 401


def test_a_revocation_made_while_the_listener_is_lost_still_counts(
    two: tuple[ApiRig, ApiRig], postgres_server: PostgresServer, pg_url: str
) -> None:
    """A notification sent while nobody listened is lost: listening again starts a new
    generation of the stamp, so nothing remembered before the loss is trusted."""
    a, b = two
    assert a.world is not None
    _listening(b)
    key = a.issue_key(a.world.admin)
    assert _key_reads(b, key, "/v1/users/me")[0] == 200
    assert _key_reads(b, key, "/v1/users/me") == (200, ["statement"]), "not remembered"
    before = b.run(_stamp(b.api.keys))
    assert isinstance(before, tuple)
    database = pg_url.rsplit("/", 1)[1]
    # The runtimes' LISTENing backends end; their pooled ones stay.
    postgres_server.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND query LIKE 'LISTEN%'",
        dbname=database,
    )
    a.run(a.api.keys.revoke(key.split("_")[1], actor=ROOT))
    assert _key_reads(b, key, "/v1/users/me")[0] == 401
    _listening(b)
    after = b.run(_stamp(b.api.keys))
    assert isinstance(after, tuple) and after[0] > before[0], (before, after)


def test_roles_keep_their_rules_across_runtimes(two: tuple[ApiRig, ApiRig]) -> None:
    a, b = two
    for role in ROLES:
        with b.as_role(role) as client:
            assert client.get("/v1/users/me").json()["role"] == a.run(_role_of(a, role))


async def _role_of(rig: ApiRig, role: str) -> str:
    assert rig.world is not None
    user = await rig.app.users.get(rig.world.role(role).id, user=ROOT)
    return str(user.role.value)


def test_without_the_trigger_every_request_reads_its_key(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A database that does not announce changes (the trigger dropped, or migrated
    with ``db.migrate`` off) is never trusted to: keys are read every time."""
    name = f"t_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    try:
        with api_rig(tmp_path_factory.mktemp("api-first"), db_url=url) as first:
            first.seed()
            assert first.world is not None
            key = first.issue_key(first.world.member)
        for table in ("api_keys", "gc_users"):
            postgres_server.psql(f"DROP TRIGGER {table}_notify_api_keys ON {table}", dbname=name)
        with api_rig(tmp_path_factory.mktemp("api-second"), db_url=url) as second:
            second.run(second.api.keys.authenticate(key))  # asks once: no trigger
            for _ in range(3):
                assert _key_reads(second, key, "/v1/users/me") == (200, ["statement"] * 2)
    finally:
        postgres_server.drop_database(name)
