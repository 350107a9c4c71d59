"""A URL names exactly the dotfile its bytes spell, and paging input is checked.

Regression tests of issue 12, items 3 and 4, on a real server: ``.nl%0A`` acted on
``.nl`` (the router dropped a trailing newline); a newline inside a path was a bare
404; a percent-escape that is not UTF-8 was read as U+FFFD, so ``%FF`` and ``%FE``
named one dotfile; crafted cursors and mistyped page parameters gave 500s or
meaningless pages. The bad-input corpus (tests/bad_input/cases.py) has every control
character and more cursors; here each behaviour is shown end to end, on PostgreSQL too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jaseci_like_services.group_config import DotfileSpec

from tests.api_support import ApiRig, api_rig, error_of
from tests.bad_input.cases import CRAFTED_CURSORS, GOOD_CURSOR
from tests.servers import PostgresServer

NL = DotfileSpec(".nl", "kept as it was", "600")
#: Each way of acting on one dotfile, with its body; purge is DELETE with ?purge=true.
WAYS: list[tuple[str, dict[str, Any] | None, dict[str, str]]] = [
    ("PUT", {"data": "replaced"}, {}),
    ("GET", None, {}),
    ("PATCH", {"data": "changed", "permission": "777"}, {}),
    ("DELETE", None, {}),
    ("DELETE", None, {"purge": "true"}),
]
WAY_IDS = ["create", "read", "update", "delete", "purge"]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    with api_rig(tmp_path_factory.mktemp("api-paths")) as started:
        started.seed()
        yield started


@pytest.fixture(scope="module")
def pg_rig(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiRig]:
    postgres_server.start()
    name = f"t_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    try:
        with api_rig(tmp_path_factory.mktemp("api-paths-pg"), db_url=url) as started:
            started.seed()
            yield started
    finally:
        postgres_server.start()
        postgres_server.drop_database(name)


def _base(rig: ApiRig) -> str:
    assert rig.world is not None
    return f"/v1/groups/{rig.world.group.id}/dotfiles"


def _act(
    client: httpx.Client, method: str, url: str, body: Any, params: dict[str, str]
) -> httpx.Response:
    return client.request(method, url, json=body, params=params)


@pytest.mark.parametrize(("method", "body", "params"), WAYS, ids=WAY_IDS)
def test_a_trailing_newline_does_not_name_the_dotfile_before_it(
    rig: ApiRig, method: str, body: Any, params: dict[str, str]
) -> None:
    assert rig.world is not None
    rig.reset_dotfiles(rig.world.group.id, NL)
    before = rig.rows(rig.world.group.id)
    with rig.as_role("admin") as client:
        response = _act(client, method, f"{_base(rig)}/.nl%0A", body, params)
        assert error_of(response) == (422, "invalid_dotfile_path"), response.text
        message = response.json()["message"]
        assert "'.nl\\n'" in message and "U+000A" in message, message
        kept = client.get(f"{_base(rig)}/.nl").json()
    assert (kept["data"], kept["permission"]) == ("kept as it was", "600")
    assert rig.rows(rig.world.group.id) == before


@pytest.mark.parametrize("path", ["a%0Ab", "%0A.nl", ".config%0A/app", ".nl%0D%0A", ".nl%0A%0A"])
@pytest.mark.parametrize(("method", "body", "params"), WAYS, ids=WAY_IDS)
def test_a_newline_anywhere_in_a_path_is_the_path_error_not_a_bare_404(
    rig: ApiRig, path: str, method: str, body: Any, params: dict[str, str]
) -> None:
    assert rig.world is not None
    rig.reset_dotfiles(rig.world.group.id, NL)
    before = rig.rows(rig.world.group.id)
    with rig.as_role("admin") as client:
        response = _act(client, method, f"{_base(rig)}/{path}", body, params)
    assert error_of(response) == (422, "invalid_dotfile_path"), response.text
    assert "control characters" in response.json()["message"]
    assert rig.rows(rig.world.group.id) == before


def test_escapes_that_are_not_utf8_never_name_the_replacement_character(rig: ApiRig) -> None:
    # U+FFFD is a character like any other: a dotfile may be named with it. %FF and %FE
    # were both decoded to it, so they named that dotfile (and each other).
    assert rig.world is not None
    rig.reset_dotfiles(rig.world.group.id, DotfileSpec(".\ufffd", "replacement", "644"))
    before = rig.rows(rig.world.group.id)
    base = _base(rig)
    with rig.as_role("admin") as client:
        assert client.get(f"{base}/.%EF%BF%BD").json()["data"] == "replacement"
        for escape in ("%FF", "%FE", "%C3%28", "%ED%A0%80", "%C0%AE"):
            for method, body, params in WAYS:
                response = _act(client, method, f"{base}/.{escape}", body, params)
                assert error_of(response) == (422, "invalid_dotfile_path"), (escape, method)
                assert "not UTF-8 text" in response.json()["message"]
        group = client.get("/v1/groups/research%FF/dotfiles", params={"domain": "acme"})
        assert error_of(group) == (422, "validation_error"), group.text
        assert "path.group: must be UTF-8 text" in group.json()["message"]
    assert rig.rows(rig.world.group.id) == before


def test_a_final_newline_after_a_fixed_route_names_no_route(rig: ApiRig) -> None:
    with rig.as_role("superadmin") as client:
        created = client.put("/v1/groups%0A", json={"name": "made-by-newline", "domain": "acme"})
        assert error_of(created) == (404, "not_found"), created.text
        listed = client.get(f"{_base(rig)}%0A")
        assert error_of(listed) == (404, "not_found"), listed.text
        groups = client.get("/v1/groups", params={"domain": "acme"}).json()["items"]
    assert "made-by-newline" not in {g["name"] for g in groups}


def test_validation_messages_show_no_regular_expression(rig: ApiRig) -> None:
    with rig.as_role("admin") as client:
        group = client.get("/v1/groups/a%01b/dotfiles")
        permission = client.put(f"{_base(rig)}/.p", json={"data": "x", "permission": "9x9"})
    for response, says in (
        (group, "path.group: must not contain control characters"),
        (permission, "body.permission: must be three octal digits, such as 644 or 755"),
    ):
        assert error_of(response) == (422, "validation_error"), response.text
        message = response.json()["message"]
        assert says in message, message
        assert "pattern" not in message and "^" not in message and "[" not in message, message


# -- pagination ---------------------------------------------------------------------------


def _search(rig: ApiRig, page: Any, order: str = "path") -> httpx.Response:
    with rig.as_role("admin") as client:
        return client.post(f"{_base(rig)}/search", json={"order": order, "page": page})


def _seed_pages(rig: ApiRig) -> None:
    assert rig.world is not None
    specs = [DotfileSpec(f".p{n}", str(n), "644") for n in range(3)]
    rig.reset_dotfiles(rig.world.group.id, *specs)


@pytest.mark.parametrize("name", sorted(CRAFTED_CURSORS))
def test_crafted_cursors_are_invalid_queries_on_sqlite(rig: ApiRig, name: str) -> None:
    _seed_pages(rig)
    order = "created" if name.startswith("created-") else "path"
    response = _search(rig, {"by": "cursor", "after": CRAFTED_CURSORS[name]}, order)
    assert error_of(response) == (400, "invalid_query"), response.text


@pytest.mark.parametrize(
    "name",
    ["id-text", "id-huge", "id-nan", "id-a-list", "path-a-number", "path-with-nul", "id-a-date"],
)
def test_crafted_cursors_are_invalid_queries_on_postgres(pg_rig: ApiRig, name: str) -> None:
    _seed_pages(pg_rig)
    response = _search(pg_rig, {"by": "cursor", "before": CRAFTED_CURSORS[name]})
    assert error_of(response) == (400, "invalid_query"), response.text


@pytest.mark.parametrize("which", ["sqlite", "postgres"])
def test_a_well_formed_cursor_still_pages(request: pytest.FixtureRequest, which: str) -> None:
    rig: ApiRig = request.getfixturevalue("rig" if which == "sqlite" else "pg_rig")
    _seed_pages(rig)
    after = _search(rig, {"by": "cursor", "after": GOOD_CURSOR, "limit": 2})
    assert after.status_code == 200, after.text
    doc = after.json()
    assert [d["path"] for d in doc["items"]] == [".p0", ".p1"]
    rest = _search(rig, {"by": "cursor", "after": doc["next_cursor"]}).json()
    assert [d["path"] for d in rest["items"]] == [".p2"]


@pytest.mark.parametrize(
    "query",
    ["limit=ten", "limit=-1", "limit=1.5", "limit=10000000000000000000000", "offset=x",
     "offset=-1", "limit=2&limit=3", "offset=1&offset=1"],
)  # fmt: skip
def test_wrong_page_parameters_are_invalid_queries(rig: ApiRig, query: str) -> None:
    assert rig.world is not None
    group = f"/v1/groups/{rig.world.group.id}"
    messages = set()
    with rig.as_role("admin") as client:
        for listing in (f"{group}/dotfiles", f"{group}/members", "/v1/groups", "/v1/users"):
            response = client.get(f"{listing}?{query}")
            assert error_of(response) == (400, "invalid_query"), (listing, response.text)
            messages.add(response.json()["message"])
    # The dotfile listing validates its parameters itself: the same words as FastAPI's.
    assert len(messages) == 1, messages


def test_the_dotfile_listing_asks_for_a_key_before_its_parameters(rig: ApiRig) -> None:
    assert rig.world is not None
    url = f"{rig.url}/v1/groups/{rig.world.group.id}/dotfiles?limit=ten&order=x"
    assert error_of(httpx.get(url))[0] == 401
    with rig.as_role("admin") as client:
        answer = client.get(url)
    assert error_of(answer) == (422, "validation_error")
    assert answer.json()["message"].startswith("query.limit: ")
