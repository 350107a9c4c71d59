"""The server fixtures start real servers that behave as the other tests need."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.servers import (
    POSTGRES_INSTALL_HINT,
    REDIS_INSTALL_HINT,
    PostgresServer,
    RedisServer,
    ServerMissing,
)


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


async def _scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def _execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- redis


def test_redis_answers_ping(redis_url: str, redis_server: RedisServer) -> None:
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
    finally:
        client.close()


@pytest.mark.parametrize("run", [1, 2])
def test_redis_url_starts_empty(redis_url: str, run: int) -> None:
    # Both runs write a key: whichever runs second sees none of the first's.
    client = redis.Redis.from_url(redis_url)
    other_db = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3")
    try:
        assert client.dbsize() == 0
        assert other_db.dbsize() == 0
        client.set("leftover", run)
        other_db.set("leftover", run)
    finally:
        client.close()
        other_db.close()


def test_redis_is_gone_after_kill_and_back_empty_after_start(
    redis_server_restartable: RedisServer,
) -> None:
    server = redis_server_restartable
    port = server.port
    # No retries: redis-py would otherwise back off for seconds against a dead server.
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    try:
        client.set("key", "value")
        server.kill()
        assert not server.running
        assert _refuses(port)
        with pytest.raises(redis.ConnectionError):
            client.ping()

        server.start()
        assert server.port == port
        assert client.ping() is True
        assert client.get("key") is None
        assert client.dbsize() == 0
    finally:
        client.close()


def test_redis_context_manager_stops_and_cleans_up() -> None:
    with RedisServer() as server:
        port, directory = server.port, server.directory
        assert server.ping()
    assert not server.running
    assert _refuses(port)
    assert not directory.exists()


def test_missing_redis_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ServerMissing) as info:
        RedisServer(binary=str(tmp_path / "redis-server"))
    assert str(info.value) == REDIS_INSTALL_HINT
    assert "apt-get install redis-server" in str(info.value)


# --------------------------------------------------------------------------- postgres


def test_postgres_accepts_an_asyncpg_connection(postgres_url: str) -> None:
    name = make_url(postgres_url).database
    assert postgres_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    assert asyncio.run(_scalar(postgres_url, "SELECT current_database()")) == name
    assert asyncio.run(_scalar(postgres_url, "SELECT 1")) == 1


def test_postgres_fresh_databases_are_isolated(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    other = f"t_other_{os.getpid()}"
    other_url = postgres_server.create_database(other)
    try:
        asyncio.run(
            _execute(postgres_url, "CREATE TABLE mine (x int)", "INSERT INTO mine VALUES (7)")
        )
        assert asyncio.run(_scalar(postgres_url, "SELECT x FROM mine")) == 7
        assert asyncio.run(_scalar(other_url, "SELECT to_regclass('mine') IS NULL")) is True
    finally:
        postgres_server.drop_database(other)


def test_postgres_immediate_stop_then_start_keeps_committed_data(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    port = postgres_server.port
    asyncio.run(_execute(postgres_url, "CREATE TABLE kept (x int)", "INSERT INTO kept VALUES (42)"))

    postgres_server.stop(mode="immediate")
    assert not postgres_server.running
    assert _refuses(port)
    with pytest.raises((DBAPIError, OSError)):
        asyncio.run(_scalar(postgres_url, "SELECT 1"))

    postgres_server.start()
    assert postgres_server.port == port
    assert asyncio.run(_scalar(postgres_url, "SELECT x FROM kept")) == 42


def test_missing_postgres_binaries_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ServerMissing) as info:
        PostgresServer(bindir=tmp_path)
    assert str(info.value) == POSTGRES_INSTALL_HINT
    assert "apt-get install postgresql" in str(info.value)
