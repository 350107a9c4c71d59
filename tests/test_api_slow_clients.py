"""Slow and surplus clients of a real `jaseci-like up` process: a connection whose
request headers do not arrive within ``api.header_timeout`` is closed (408 when some
of it came), so its file descriptor is freed; beyond ``api.max_connections`` a new
connection is answered 503 at once instead of waiting, and clients are served again
once connections close."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from tests.api_support import WAIT, error_of
from tests.plugin_fixtures import Cli
from tests.servers import free_port

pytest_plugins = ["tests.plugin_fixtures"]

#: The start of a request whose headers never end.
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
def port() -> int:
    return free_port()


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _open(port: int, count: int, first_bytes: bytes) -> list[Stream]:
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    for _, writer in streams:
        if first_bytes:
            writer.write(first_bytes)
            await writer.drain()
    return streams


async def _until_closed(streams: list[Stream]) -> list[bytes]:
    """Everything each connection receives until the server closes it (bounded by WAIT)."""
    try:
        return await asyncio.wait_for(asyncio.gather(*(r.read() for r, _ in streams)), WAIT)
    except TimeoutError:
        raise AssertionError(f"connections still open after {WAIT}s") from None
    finally:
        for _, writer in streams:
            writer.close()


def test_connections_sending_headers_slowly_are_closed_after_the_header_timeout(
    cli: Cli, port: int
) -> None:
    with cli.serve(
        "up", env={"JASECI_LIKE__API__PORT": str(port), "JASECI_LIKE__API__HEADER_TIMEOUT": "1"}
    ) as up:
        up.wait_for_line("ready:")
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=WAIT) as client:
            assert client.get("/healthz").status_code == 200
        baseline = _fds(up.proc.pid)

        async def scenario() -> tuple[list[bytes], list[bytes]]:
            slow = await _open(port, 200, PARTIAL)
            silent = await _open(port, 20, b"")
            return await _until_closed(slow), await _until_closed(silent)

        slow, silent = asyncio.run(scenario())
        assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in slow), slow[0]
        assert b'"code": "request_timeout"' in slow[0] and b"api.header_timeout" in slow[0]
        assert silent == [b""] * 20  # nothing was asked: closed without an answer
        # Every one of them was the server's to close: its descriptors are back.
        assert _fds(up.proc.pid) <= baseline + 5, (baseline, os.listdir(f"/proc/{up.proc.pid}/fd"))
        with httpx.Client(base_url=url, timeout=WAIT) as client:
            assert client.get("/healthz").status_code == 200
            # A request sent at once is not cut off by the deadline of its connection.
            assert client.get("/healthz").status_code == 200


def test_beyond_max_connections_new_ones_get_503_at_once_and_clients_are_served_after(
    cli: Cli, port: int
) -> None:
    env = {
        "JASECI_LIKE__API__PORT": str(port),
        "JASECI_LIKE__API__MAX_CONNECTIONS": "20",
        # Far longer than the test: only the test frees the connections it holds.
        "JASECI_LIKE__API__HEADER_TIMEOUT": "600",
    }
    with cli.serve("up", env=env) as up:
        up.wait_for_line("ready:")
        url = f"http://127.0.0.1:{port}"

        async def scenario() -> tuple[list[bytes], httpx.Response, httpx.Response]:
            held = await _open(port, 20, PARTIAL)
            # The cap is reached and the 20 wait for headers for minutes: a new client
            # is answered now, not when one of them leaves.
            async with httpx.AsyncClient(base_url=url, timeout=WAIT) as client:
                refused = await client.get("/healthz")
            surplus = await _until_closed(await _open(port, 50, b""))
            for _, writer in held:
                writer.write_eof()  # the held clients give up; the server closes them
            await _until_closed(held)
            async with httpx.AsyncClient(base_url=url, timeout=WAIT) as client:
                served = await client.get("/healthz")
            return surplus, refused, served

        surplus, refused, served = asyncio.run(scenario())
        assert error_of(refused) == (503, "too_many_connections")
        assert refused.headers["retry-after"] == "1"
        assert "20 connections" in refused.json()["message"]
        assert all(answer.startswith(b"HTTP/1.1 503 ") for answer in surplus), surplus[0]
        assert served.status_code == 200 and served.json() == {"status": "ok"}
        up.signal_and_wait(signal.SIGTERM)
    assert "api.max_connections" in up.stderr, up.describe()
    assert "Traceback" not in up.stderr, up.describe()
