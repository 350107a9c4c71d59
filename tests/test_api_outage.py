"""A database outage through the API, on a real PostgreSQL server that the test stops:
requests get 503 with a retriable code (never a 500), and /readyz says not ready and
names the service the supervisor gave up on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_support import ApiRig, api_rig, error_of
from tests.servers import PostgresServer


@pytest.fixture
def pg_rig(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[ApiRig]:
    postgres_server.start()
    name = f"t_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    settings = {
        # The test drives the supervisor's checks itself (check_once), one at a time.
        "runtime.supervisor.enabled": "false",
        "runtime.supervisor.give_up_after": "1",
        "group_config.retry.attempts": "2",
        "group_config.retry.base_delay": "0.01",
    }
    try:
        with api_rig(tmp_path, db_url=url, settings=settings) as rig:
            rig.seed()
            yield rig
    finally:
        postgres_server.start()
        postgres_server.drop_database(name)


def test_a_database_outage_is_503_and_readyz_reports_what_was_given_up(
    pg_rig: ApiRig, postgres_server: PostgresServer
) -> None:
    assert pg_rig.world is not None
    listing = f"/v1/groups/{pg_rig.world.group.id}/dotfiles"
    with pg_rig.as_role("admin") as client, pg_rig.client() as probe:
        assert client.get(listing).status_code == 200
        assert probe.get("/readyz").status_code == 200
        postgres_server.stop()
        for response in (
            client.get(listing),
            client.put(f"{listing}/.new", json={"data": "x"}),
        ):
            assert error_of(response) == (503, "database_unavailable"), response.text
            assert response.headers["retry-after"] == "1"
        unhealthy = probe.get("/readyz")
        assert unhealthy.status_code == 503
        db = {s["name"]: s for s in unhealthy.json()["services"]}["db"]
        assert (db["state"], db["healthy"], db["gave_up"]) == ("RUNNING", False, False)
        supervisor = pg_rig.runtime.supervisor
        supervisor.check_once()  # the db's restart fails; one failure is all it may have
        assert supervisor.states["db"].gave_up
        given_up = probe.get("/readyz")
        assert given_up.status_code == 503
        body = given_up.json()
        assert body["ready"] is False
        db = {s["name"]: s for s in body["services"]}["db"]
        assert (db["state"], db["gave_up"]) == ("FAILED", True)
        assert probe.get("/healthz").status_code == 200, "liveness does not depend on the db"
