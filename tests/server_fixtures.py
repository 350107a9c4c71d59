"""pytest fixtures that start real servers (see ``tests/servers.py``).

Enabled for every test by ``pytest_plugins = ["tests.server_fixtures"]`` in
``tests/conftest.py`` (pytest accepts ``pytest_plugins`` only in the top-level
conftest).

- ``redis_server`` (session): one ``redis-server`` for the whole run.
- ``redis_url`` (function): ``redis://127.0.0.1:<port>/0`` of that server, after a
  ``FLUSHALL``: each test starts with no keys at all, in any logical database.
  (FLUSHALL rather than a logical database per test: pub/sub channels are not
  per-database, and code under test may open other database numbers.) It starts
  the server again first if an earlier test stopped or killed it.
- ``redis_server_restartable`` (function): a private ``redis-server`` that the test
  may ``kill()``/``stop()`` and ``start()`` again on the same port.
- ``postgres_server`` (session): one throwaway PostgreSQL cluster for the run.
- ``postgres_url`` (function): ``postgresql+asyncpg://postgres@127.0.0.1:<port>/t_<hex>``
  of a database created for this test and dropped (``WITH (FORCE)``) after it. It
  starts the cluster again first if an earlier test stopped it.

A missing binary fails the test (``pytest.fail``) with a message that says how to
install it; nothing is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.servers import PostgresServer, RedisServer, ServerMissing


def _missing(exc: ServerMissing) -> NoReturn:
    # Outside the ``except`` block, so the report is the install hint alone.
    pytest.fail(str(exc), pytrace=False)


def _new_redis() -> RedisServer:
    try:
        server = RedisServer()
    except ServerMissing as exc:
        missing = exc
    else:
        try:
            return server.start()
        except BaseException:
            server.close()
            raise
    _missing(missing)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` on a free loopback port for the whole session."""
    server = _new_redis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL (db 0), emptied with FLUSHALL before the test."""
    redis_server.start()  # no-op unless an earlier test stopped or killed it
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def redis_server_restartable() -> Iterator[RedisServer]:
    """A private ``redis-server`` for this test only, free to be killed and restarted."""
    server = _new_redis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on a free loopback port for the whole session."""
    try:
        server = PostgresServer()
    except ServerMissing as exc:
        missing = exc
    else:
        try:
            server.start()
            yield server
        finally:
            server.close()
        return
    _missing(missing)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An asyncpg URL of a fresh database ``t_<uuid hex>``, dropped after the test."""
    postgres_server.start()  # no-op unless an earlier test stopped it
    name = f"t_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.start()  # the test may have left it stopped
        postgres_server.drop_database(name)
