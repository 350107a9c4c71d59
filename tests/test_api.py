"""The HTTP API on a real server (uvicorn on loopback) with a real client (httpx):
group_config's authorization matrix through HTTP, API keys (401s, revocation, no
secret anywhere), the error body and statuses, 413 and 422, probes and metrics."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from jaseci_like_services.group_config import DotfileSpec

from tests.api_support import ROLES, WAIT, ApiRig, api_rig, error_of
from tests.group_config_fixtures import ROOT, BeginCounter, World
from tests.servers import PostgresServer

SEED = (DotfileSpec(".seed", "seed data", "644"), DotfileSpec(".other", "x", "600"))


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    """One SQLite-backed runtime for the module, with the world seeded."""
    with api_rig(tmp_path_factory.mktemp("api")) as started:
        started.seed()
        yield started


@pytest.fixture(scope="module")
def pg_rig(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiRig]:
    """The same on a PostgreSQL database of its own."""
    postgres_server.start()
    name = f"t_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    try:
        with api_rig(tmp_path_factory.mktemp("api-pg"), db_url=url) as started:
            started.seed()
            yield started
    finally:
        postgres_server.start()
        postgres_server.drop_database(name)


def world_of(rig: ApiRig) -> World:
    assert rig.world is not None
    return rig.world


# -- the authorization matrix ------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    name: str
    method: str
    #: After ``/v1/groups/{group}``.
    tail: str
    writes: bool
    ok: int
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None


OPS = [
    Op("get", "GET", "/dotfiles/.seed", False, 200),
    Op("list", "GET", "/dotfiles", False, 200),
    Op("search", "POST", "/dotfiles/search", False, 200, {"path_prefix": ".s"}),
    Op("create", "PUT", "/dotfiles/.new", True, 201, {"data": "n"}),
    Op("create_nested", "PUT", "/dotfiles/.config/app/set.toml", True, 201, {"data": "n"}),
    Op("update", "PATCH", "/dotfiles/.seed", True, 200, {"data": "changed"}),
    Op("delete", "DELETE", "/dotfiles/.seed", True, 204),
    Op("purge", "DELETE", "/dotfiles/.seed", True, 204, query={"purge": "true"}),
]
READERS = {"superadmin", "admin", "member"}
WRITERS = {"superadmin", "admin"}
#: uuid: the group's UUID; name: "research" in domain acme; own_domain: "research"
#: with no domain, so the caller's domain is searched.
REFS = ("uuid", "name", "own_domain")


def _target(world: World, ref: str) -> tuple[str, dict[str, str]]:
    if ref == "uuid":
        return str(world.group.id), {}
    if ref == "name":
        return "research", {"domain": "acme"}
    return "research", {}


def _call(client: httpx.Client, op: Op, group: str, params: dict[str, str]) -> httpx.Response:
    return client.request(
        op.method,
        f"/v1/groups/{group}{op.tail}",
        params={**params, **(op.query or {})},
        json=op.body,
    )


def _matrix_case(rig: ApiRig, role: str, op: Op, ref: str) -> None:
    world = world_of(rig)
    rig.reset_dotfiles(world.group.id, *SEED)
    before = rig.rows(world.group.id)
    group, params = _target(world, ref)
    with rig.as_role(role) as client:
        response = _call(client, op, group, params)
    after = rig.rows(world.group.id)
    if ref == "own_domain" and role == "other_admin":
        # "research" is looked up in globex, the admin's own domain: there is none there.
        assert error_of(response) == (404, "group_not_found"), response.text
        assert after == before
        return
    allowed = role in (WRITERS if op.writes else READERS)
    if allowed:
        assert response.status_code == op.ok, f"{role} {op.name}: {response.text}"
        assert (after != before) == op.writes
        if op.ok == 204:
            assert response.content == b""
    else:
        assert error_of(response) == (403, "forbidden"), f"{role} {op.name}: {response.text}"
        assert after == before, "a refused request changed something"


@pytest.mark.parametrize("ref", REFS)
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix_over_http(rig: ApiRig, role: str, op: Op, ref: str) -> None:
    _matrix_case(rig, role, op, ref)


PG_OPS = [op for op in OPS if op.name in ("get", "create", "delete")]


@pytest.mark.parametrize("op", PG_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix_on_postgres(pg_rig: ApiRig, role: str, op: Op) -> None:
    _matrix_case(pg_rig, role, op, "uuid")


@pytest.mark.parametrize("role", ROLES)
def test_an_unknown_group_is_404_for_every_role(rig: ApiRig, role: str) -> None:
    with rig.as_role(role) as client:
        for group, params in ((str(uuid.uuid4()), {}), ("nope", {"domain": "acme"})):
            for op in OPS:
                response = _call(client, op, group, params)
                assert error_of(response) == (404, "group_not_found"), (op.name, response.text)


def test_the_dotfile_answers_and_their_statuses(rig: ApiRig) -> None:
    world = world_of(rig)
    rig.reset_dotfiles(world.group.id, *SEED)
    base = f"/v1/groups/{world.group.id}/dotfiles"
    with rig.as_role("admin") as client:
        created = client.put(f"{base}/.config/fish/config.fish", json={"data": "set -x A 1"})
        assert created.status_code == 201, created.text
        doc = created.json()
        assert doc["dotfile"]["path"] == ".config/fish/config.fish"
        assert doc["dotfile"]["permission"] == "644"
        assert isinstance(doc["leftover_space"], int) and doc["leftover_space"] < 65_536
        again = client.put(f"{base}/.config/fish/config.fish", json={"data": "x"})
        assert error_of(again) == (409, "dotfile_already_exists")
        listing = client.get(base, params={"order": "path"}).json()
        assert [d["path"] for d in listing["items"]] == [
            ".config/fish/config.fish",
            ".other",
            ".seed",
        ]
        assert listing["leftover_space"] == doc["leftover_space"]
        assert listing["total_count"] == 3
        changed = client.patch(f"{base}/.seed", json={"permission": "600"})
        assert changed.status_code == 200 and changed.json()["dotfile"]["data"] == "seed data"
        by_offset = client.post(f"{base}/search", json={"page": {"limit": 2, "offset": 2}})
        assert [d["path"] for d in by_offset.json()["items"]] == [".config/fish/config.fish"]
        first = {"by": "cursor", "limit": 2}
        page = client.post(f"{base}/search", json={"order": "path", "page": first}).json()
        assert [d["path"] for d in page["items"]] == [".config/fish/config.fish", ".other"]
        assert page["has_next"] is True and page["next_cursor"] is not None
        after = {**first, "after": page["next_cursor"]}
        rest = client.post(f"{base}/search", json={"order": "path", "page": after}).json()
        assert [d["path"] for d in rest["items"]] == [".seed"]
        foreign = client.post(f"{base}/search", json={"order": "created", "page": after})
        assert error_of(foreign) == (400, "invalid_query")
        assert client.delete(f"{base}/.seed").status_code == 204
        assert error_of(client.get(f"{base}/.seed")) == (404, "dotfile_not_found")
        assert error_of(client.delete(f"{base}/.seed")) == (404, "dotfile_not_found")
        reserved = client.put(f"{base}/.ssh/authorized_keys", json={"data": "k"})
        assert error_of(reserved) == (422, "invalid_dotfile_path")
        dotdot = client.put(f"{base}/a/%2E%2E/b", json={"data": "k"})
        assert error_of(dotdot) == (422, "invalid_dotfile_path")


# -- API keys ------------------------------------------------------------------------------------


def test_no_key_a_wrong_key_and_a_revoked_key_are_401(
    rig: ApiRig, caplog: pytest.LogCaptureFixture
) -> None:
    world = world_of(rig)
    member = world.member
    good = rig.issue_key(member)
    key_id = good.split("_")[1]
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    path = f"/v1/groups/{world.group.id}/dotfiles"
    presented = [forged, "not-a-key"]
    caplog.set_level(logging.DEBUG)
    answers: list[httpx.Response] = []
    with rig.client(good) as client:
        assert client.get(path).status_code == 200
    with rig.client() as anonymous:
        answers.append(anonymous.get(path))
        answers.append(anonymous.get(path, headers={"Authorization": f"Basic {good}"}))
        for key in presented:
            answers.append(anonymous.get(path, headers={"Authorization": f"Bearer {key}"}))
    keys = rig.api.keys
    assert keys is not None
    revoked = rig.run(keys.revoke(key_id, actor=ROOT))
    assert revoked.revoked
    with rig.client(good) as client:
        after_revoke = client.get(path)
    answers.append(after_revoke)
    for response in answers:
        assert error_of(response) == (401, "unauthorized"), response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert "revoked" in after_revoke.json()["message"]
    assert "revoked" not in answers[2].json()["message"], "a forged key must not learn the state"
    # Nothing secret in any answer, nor in the log.
    # jlk_<id>_<secret>: the secret may hold "_" itself (its last piece was once "k").
    secrets = [good, forged, good.split("_", 2)[2]]
    for response in answers:
        text = response.text + str(response.headers)
        assert not any(s in text for s in secrets), response.text
    assert not any(s in caplog.text for s in secrets), "a key reached the log"


def test_a_verified_key_is_read_again_only_after_a_commit(rig: ApiRig) -> None:
    """SQLite: a key found valid is remembered until anything is committed (the
    database's change stamp); every commit, by anyone, makes the next check read."""
    world = world_of(rig)
    keys = rig.api.keys
    assert keys is not None
    token = rig.issue_key(world.member)
    reads = BeginCounter(rig.engine)
    try:
        counts = []
        for _ in range(3):
            reads.count = 0
            assert rig.run(keys.authenticate(token)).id == world.member.id
            counts.append(reads.count)
        assert counts == [1, 0, 0]
        rig.issue_key(world.outsider)  # an unrelated commit
        reads.count = 0
        assert rig.run(keys.authenticate(token)).id == world.member.id
        assert reads.count == 1
    finally:
        reads.close()


def test_a_key_revoked_under_concurrent_use_is_refused_for_every_later_request(
    rig: ApiRig,
) -> None:
    """Threads use a key while it is revoked: each request that starts after the revoke
    returned is 401, none is anything but 200 or 401."""
    world = world_of(rig)
    token = rig.issue_key(world.member)
    answers: list[tuple[float, int]] = []
    changed = threading.Condition()
    revoked_at: list[float] = []

    def use() -> None:
        with rig.client(token) as client:
            for _ in range(5000):
                began = time.monotonic()
                status = client.get("/v1/users/me").status_code
                with changed:
                    answers.append((began, status))
                    changed.notify_all()
                    if revoked_at and began > revoked_at[0]:
                        return  # one request after the revoke is enough

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    with changed:  # the key in use (and remembered) before it is revoked
        assert changed.wait_for(lambda: sum(s == 200 for _, s in answers) >= 20, WAIT), answers[:5]
    keys = rig.api.keys
    assert keys is not None
    rig.run(keys.revoke(token.split("_")[1], actor=ROOT))
    with changed:
        revoked_at.append(time.monotonic())
    for thread in threads:
        thread.join(WAIT)
    assert {status for _, status in answers} <= {200, 401}
    later = [status for began, status in answers if began > revoked_at[0]]
    assert later and set(later) == {401}, f"{later.count(200)} request(s) passed after revoking"


def test_a_users_key_maps_to_that_user_and_the_rules_decide(rig: ApiRig) -> None:
    world = world_of(rig)
    for role in ROLES:
        with rig.as_role(role) as client:
            me = client.get("/v1/users/me")
            assert me.status_code == 200, me.text
            assert me.json()["id"] == str(world.role(role).id)


# -- groups and users, for admins ---------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_group_and_user_admin_routes_follow_the_domain_rules(rig: ApiRig, role: str) -> None:
    world = world_of(rig)
    admins = {"superadmin", "admin"}
    suffix = uuid.uuid4().hex[:8]
    with rig.as_role(role) as client:
        created = client.put("/v1/groups", json={"name": f"g-{suffix}", "domain": "acme"})
        if role in admins:
            assert created.status_code == 201, created.text
            gid = created.json()["id"]
            renamed = client.patch(f"/v1/groups/{gid}", json={"name": f"h-{suffix}"})
            assert renamed.status_code == 200 and renamed.json()["name"] == f"h-{suffix}"
            member = client.put(f"/v1/groups/{gid}/members/member@acme.test")
            assert member.status_code == 201, member.text
            members = client.get(f"/v1/groups/{gid}/members").json()["items"]
            assert [m["email"] for m in members] == ["member@acme.test"]
            assert client.delete(f"/v1/groups/{gid}/members/member@acme.test").status_code == 204
            assert client.delete(f"/v1/groups/{gid}").status_code == 204
        else:
            assert error_of(created) == (403, "forbidden")
        research = client.get(f"/v1/groups/{world.group.id}")
        if role in READERS:
            assert research.status_code == 200 and research.json()["name"] == "research"
        else:
            assert error_of(research) == (403, "forbidden")
        user = client.put("/v1/users", json={"email": f"u-{suffix}@acme.test", "domain": "acme"})
        if role in admins:
            assert user.status_code == 201 and user.json()["role"] == "user", user.text
            gone = client.delete(f"/v1/users/{user.json()['id']}")
            assert gone.status_code == 204
        else:
            assert error_of(user) == (403, "forbidden")
        promote = client.patch(f"/v1/users/{world.outsider.id}", json={"role": "superadmin"})
        if role == "superadmin":
            assert promote.status_code == 200 and promote.json()["role"] == "superadmin"
            demote = client.patch(f"/v1/users/{world.outsider.id}", json={"role": "user"})
            assert demote.status_code == 200
        else:
            assert error_of(promote) == (403, "forbidden")
        visible = {u["email"] for u in client.get("/v1/users").json()["items"]}
        if role == "superadmin":
            assert "admin@globex.test" in visible and "member@acme.test" in visible
        elif role == "admin":
            assert "member@acme.test" in visible and "admin@globex.test" not in visible
        else:
            assert visible == {EMAILS[role]}


#: The emails of the seeded users (tests/group_config_fixtures.py).
EMAILS = {
    "superadmin": "root@acme.test",
    "admin": "admin@acme.test",
    "other_admin": "admin@globex.test",
    "member": "member@acme.test",
    "outsider": "outsider@acme.test",
}


# -- request validation and the error body -------------------------------------------------------


def test_unknown_fields_and_bad_values_are_422_without_echoing_them(rig: ApiRig) -> None:
    world = world_of(rig)
    base = f"/v1/groups/{world.group.id}/dotfiles"
    secretish = "hunter2-do-not-echo"
    with rig.as_role("admin") as client:
        cases = [
            client.put(f"{base}/.a", json={"data": "x", "colour": secretish}),
            client.put(f"{base}/.a", json={"data": "x", "permission": "8" + secretish}),
            client.patch(f"{base}/.seed", json={}),
            client.put("/v1/groups", json={"name": "x", "owner": secretish}),
            client.put("/v1/users", json={"email": "no-at-sign"}),
            client.put(
                f"{base}/.a", content=b"{not json", headers={"content-type": "application/json"}
            ),
        ]
        for response in cases:
            assert error_of(response) == (422, "validation_error"), response.text
            assert secretish not in response.text
        assert "colour" in cases[0].json()["message"]
        # Paging input is refused as a query the service cannot run (issue 12).
        pages = [
            client.post(f"{base}/search", json={"page": {"limit": 0}}),
            client.post(
                f"{base}/search", json={"page": {"by": "cursor", "after": "a", "before": "b"}}
            ),
            client.post(f"{base}/search", json={"page": {"limit": 5, "colour": secretish}}),
        ]
        for response in pages:
            assert error_of(response) == (400, "invalid_query"), response.text
            assert secretish not in response.text


def test_bodies_over_the_limit_are_413(tmp_path: Path) -> None:
    with api_rig(tmp_path, settings={"api.max_body_bytes": "2048"}) as small:
        world = small.seed()
        base = f"/v1/groups/{world.group.id}/dotfiles"
        with small.as_role("admin") as client:
            declared = client.put(f"{base}/.big", json={"data": "x" * 4096})
            assert error_of(declared) == (413, "payload_too_large")

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
                yield b'{"data": "'
                for _ in range(8):
                    yield b"y" * 512
                yield b'"}'

            streamed = client.put(
                f"{base}/.big", content=chunks(), headers={"content-type": "application/json"}
            )
            assert error_of(streamed) == (413, "payload_too_large")
            fits = client.put(f"{base}/.small", json={"data": "x" * 1000})
            assert fits.status_code == 201, fits.text
        assert [row[2] for row in small.rows(world.group.id)] == [".small"]


def test_unknown_routes_and_methods_answer_json(rig: ApiRig) -> None:
    with rig.as_role("admin") as client:
        assert error_of(client.get("/v1/nothing-here")) == (404, "not_found")
        assert error_of(client.post("/v1/users/me")) == (405, "method_not_allowed")


# -- probes, metrics, OpenAPI -----------------------------------------------------------------


def test_probes_metrics_and_the_openapi_document(rig: ApiRig) -> None:
    with rig.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        services = {s["name"]: s for s in ready.json()["services"]}
        assert set(services) == {"db", "group_config", "task"}
        assert all(s["state"] == "RUNNING" and s["healthy"] for s in services.values())
        with rig.as_role("member") as member:
            member.get(f"/v1/groups/{world_of(rig).group.id}/dotfiles").raise_for_status()
        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert 'api_http_requests_total{method="GET",route="/v1/groups/{group}/dotfiles"' in text
        assert 'group_config_operations_total{operation="dotfile.search",outcome="ok"}' in text
        assert 'api_operations_total{operation="api_key.authenticate",outcome="ok"}' in text
        document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert "/v1/groups/{group}/dotfiles/{path}" in paths
    assert set(paths["/v1/groups/{group}/dotfiles/{path}"]) == {"get", "put", "patch", "delete"}
    assert paths["/v1/groups/{group}/dotfiles/copy"]["post"]["responses"]["202"]
    assert "/v1/tasks/{task_id}/cancel" in paths
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    # The listing validates its parameters itself (RequestParams): still each documented.
    listing = paths["/v1/groups/{group}/dotfiles"]["get"]
    assert listing["security"] == [{"ApiKey": []}]
    documented = {p["name"]: p for p in listing["parameters"]}
    assert {n: (p["in"], p["required"]) for n, p in documented.items()} == {
        "group": ("path", True),
        "limit": ("query", False),
        "offset": ("query", False),
        "domain": ("query", False),
        "path_prefix": ("query", False),
        "order": ("query", False),
    }
    limit = documented["limit"]["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == (
        "integer",
        1,
        1000,
        100,
    )
    assert documented["order"]["schema"]["enum"] == ["created", "path"]
    assert documented["group"]["schema"]["maxLength"] == 255
    error = document["components"]["schemas"]["ErrorV1"]
    assert set(error["properties"]) == {"code", "message"}


def sockets_to(port: int) -> int:
    """TCP sockets of this machine (any state, TIME_WAIT included) with ``port`` at
    one end: a connection made and closed leaves one behind for a while."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as lines:
            for line in list(lines)[1:]:
                local, remote = line.split()[1:3]
                ends = {int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)}
                count += port in ends
    return count


def test_the_api_health_takes_no_connection(tmp_path: Path) -> None:
    settings = {"api.max_connections": "2", "runtime.supervisor.enabled": "false"}
    with api_rig(tmp_path, settings=settings) as rig:
        api, server = rig.api, rig.api.server
        assert server is not None
        with rig.client() as client:
            # One of the two connections the cap allows is this client's, kept alive;
            # a probe would take the other (and leave a TIME_WAIT socket behind).
            assert client.get("/healthz").status_code == 200
            before = sockets_to(server.port)
            assert api.health() is True
            assert sockets_to(server.port) == before, "the health check connected"
            assert client.get("/healthz").status_code == 200
        server.stop(2.0)
        assert api.health() is False
