"""The endpoints behind the dashboard, over real HTTP: ``/ui/session`` (cookie sign-in,
CSRF, sign-out), ``/v1/instances``, ``/v1/config`` and the ``/v1/tasks`` listing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jaseci_like_services.task.context import TaskContext

from jaseci_like import MetaService, Runtime
from tests.api_support import WAIT, ApiRig, api_rig, error_of, settings_env
from tests.test_instances import wait_until

#: A secret in a URL, set through the environment: it must never be shown.
PASSWORD = "hunter2-not-shown"


def finish(ctx: TaskContext, value: int) -> int:
    return value


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    settings = {"redis.url": f"redis://:{PASSWORD}@127.0.0.1:1/0"}
    with api_rig(tmp_path_factory.mktemp("dashboard-api"), settings=settings) as rig:
        rig.seed()
        rig.tasks.register("ui.finish", finish)
        yield rig


def browser_client(rig: ApiRig) -> httpx.Client:
    return httpx.Client(base_url=rig.url, timeout=WAIT)


def signed_in(rig: ApiRig, role: str) -> tuple[httpx.Client, str]:
    """A cookie-only client (no Authorization header) and its CSRF token."""
    client = browser_client(rig)
    answer = client.post("/ui/session", json={"key": rig.keys[role]})
    assert answer.status_code == 200, answer.text
    return client, answer.json()["csrf_token"]


def test_sign_in_sets_a_strict_httponly_session_cookie_without_the_key(rig: ApiRig) -> None:
    client = browser_client(rig)
    answer = client.post("/ui/session", json={"key": rig.keys["admin"]})
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert rig.keys["admin"] not in cookie and rig.keys["admin"] not in answer.text
    body = answer.json()
    assert body["role"] == "admin" and body["domain"] == "acme" and body["csrf_token"]
    assert client.get("/v1/users/me").json()["email"] == "admin@acme.test"
    assert client.get("/ui/session").json()["csrf_token"] == body["csrf_token"]


def test_a_wrong_key_is_refused(rig: ApiRig) -> None:
    client = browser_client(rig)
    answer = client.post("/ui/session", json={"key": "jlk_0123456789abcdef_nope"})
    assert error_of(answer) == (401, "unauthorized")
    assert "not valid" in answer.json()["message"]
    assert "set-cookie" not in answer.headers
    assert error_of(client.post("/ui/session", json={}))[0] == 422
    assert error_of(client.get("/ui/session"))[0] == 401


def test_cookie_writes_need_the_csrf_token_and_this_origin(rig: ApiRig) -> None:
    client, csrf = signed_in(rig, "admin")
    assert error_of(client.put("/v1/groups", json={"name": "no-token"})) == (403, "csrf_rejected")
    wrong = client.put("/v1/groups", json={"name": "bad"}, headers={"X-CSRF-Token": "x" + csrf})
    assert error_of(wrong) == (403, "csrf_rejected")
    elsewhere = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert error_of(client.put("/v1/groups", json={"name": "e"}, headers=elsewhere))[1] == (
        "csrf_rejected"
    )
    same = {"X-CSRF-Token": csrf, "Origin": rig.url}
    assert client.put("/v1/groups", json={"name": "csrf-ok"}, headers=same).status_code == 201
    forged = browser_client(rig).post(
        "/ui/session", json={"key": rig.keys["member"]}, headers={"Origin": "http://evil.example"}
    )
    assert error_of(forged) == (403, "csrf_rejected")


def test_sign_out_ends_the_server_session(rig: ApiRig) -> None:
    client, csrf = signed_in(rig, "member")
    session_id = client.cookies["jl_session"]
    assert error_of(client.delete("/ui/session"))[1] == "csrf_rejected"
    assert client.delete("/ui/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    replay = browser_client(rig)
    replay.cookies.set("jl_session", session_id)
    assert error_of(replay.get("/v1/users/me")) == (401, "unauthorized")


def test_instances_show_this_process_to_operators_only(rig: ApiRig) -> None:
    assert error_of(rig.as_role("member").get("/v1/instances")) == (403, "forbidden")
    assert error_of(browser_client(rig).get("/v1/instances"))[0] == 401
    body = rig.as_role("admin").get("/v1/instances").json()
    [instance] = body["items"]
    assert instance["api_url"] == rig.url
    rows = {row["name"]: row for row in instance["services"]}
    assert rows["api"]["state"] == "RUNNING" and rows["api"]["healthy"] is True
    assert rows["api"]["requires"] == ["db", "group_config", "task"]
    assert rows["group_config"]["level"] > rows["db"]["level"]
    assert rows["redis"]["enabled"] is False


def test_instances_list_every_runtime_on_the_store_and_a_lost_one(rig: ApiRig) -> None:
    admin = rig.as_role("admin")
    own = rig.runtime.instance_id
    environ = settings_env(
        {"db.data_dir": str(rig.data_dir), "api.enabled": "false", "task.enabled": "false"}
    )
    other = Runtime(meta=MetaService.isolated(), environ=environ)
    other.start(role="worker")
    store = rig.runtime.cluster_store()
    ghost = {
        "id": "ghost",
        "host": "elsewhere",
        "pid": 4242,
        "role": "up",
        "lost_after": 0.001,
        "prune_after": 3600,
        "services": [{"name": "db", "enabled": True, "state": "RUNNING", "healthy": True}],
    }
    try:
        store.put_instance("ghost", ghost)

        def listed() -> dict[str, dict[str, Any]]:
            return {i["id"]: i for i in admin.get("/v1/instances").json()["items"]}

        wait_until("the ghost shows lost", lambda: listed().get("ghost", {}).get("lost") is True)
        items = listed()
        assert set(items) == {own, other.instance_id, "ghost"}
        assert items[other.instance_id]["role"] == "worker"
        assert items[other.instance_id]["lost"] is False
        assert [i for i, v in items.items() if v["leader"]] in ([own], [other.instance_id])
        rows = {r["name"]: r for r in items[other.instance_id]["services"]}
        assert rows["db"]["state"] == "RUNNING"
        assert rows.get("api", {"enabled": False})["enabled"] is False  # off in the worker
        assert rows["db"]["requires"] == sorted(rig.runtime.meta.builder("db").requires)
        assert items["ghost"]["host"] == "elsewhere" and items["ghost"]["pid"] == 4242
        assert items[own]["services"][0]["healthy"] is not None  # checked now, not reported
    finally:
        other.stop(timeout=10.0)
        store.remove_instance("ghost")
    assert set(i["id"] for i in admin.get("/v1/instances").json()["items"]) == {own}


def test_config_shows_origins_and_masks_secrets(rig: ApiRig) -> None:
    assert error_of(rig.as_role("member").get("/v1/config")) == (403, "forbidden")
    answer = rig.as_role("superadmin").get("/v1/config")
    assert answer.status_code == 200
    assert PASSWORD not in answer.text
    entries = {e["key"]: e for service in answer.json()["items"] for e in service["entries"]}
    assert entries["redis.url"]["origin"] == "env JASECI_LIKE__REDIS__URL"
    assert "***" in entries["redis.url"]["value"]
    assert entries["api.port"]["origin"] == "env JASECI_LIKE__API__PORT"
    assert entries["api.ui"] == {"key": "api.ui", "value": True, "origin": "default"}


def test_tasks_listing_is_the_callers_and_all_for_a_superadmin(rig: ApiRig) -> None:
    world = rig.world
    assert world is not None
    state = rig.api.state_of_routes
    assert state is not None
    mine: dict[str, str] = {}
    for role in ("member", "outsider", "member"):
        task_id = rig.tasks.submit("ui.finish", value=len(mine))
        rig.run(state.owners.record(task_id, "ui.finish", world.role(role)))
        rig.tasks.wait(task_id, WAIT)
        mine[task_id] = role
    member = rig.as_role("member").get("/v1/tasks").json()
    assert {t["task_id"] for t in member["items"]} == {i for i, r in mine.items() if r == "member"}
    assert member["total_count"] == 2
    assert all(t["status"]["state"] == "SUCCESS" for t in member["items"])
    every = rig.as_role("superadmin").get("/v1/tasks", params={"limit": 1}).json()
    assert every["total_count"] >= 3 and every["has_next"] and len(every["items"]) == 1
    assert error_of(rig.as_role("member").get("/v1/tasks", params={"limit": 0}))[0] in (400, 422)
    assert error_of(browser_client(rig).get("/v1/tasks"))[0] == 401


def test_the_page_and_its_files_are_served_with_a_strict_policy(rig: ApiRig) -> None:
    client = browser_client(rig)
    page = client.get("/ui", follow_redirects=True)
    assert page.status_code == 200 and '<form id="signin-form">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/ui/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert ".innerHTML" not in script.text and "localStorage" not in script.text
    assert error_of(client.get("/ui/static/..%2Fapp.py"))[0] == 404
    assert error_of(client.get("/ui/static/index.html"))[0] == 404
