"""Stopping the api service with a request that cannot finish in time: the request is
ended cleanly (503 ``shutting_down``, never uvicorn's bare 500), nothing is written,
and the stop stays within its budget."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from jaseci_like_services.api.inflight import RequestTracker

from tests.api_support import WAIT, api_rig


def test_a_request_still_running_at_stop_gets_503_and_the_stop_is_bounded(tmp_path: Path) -> None:
    with api_rig(tmp_path, settings={"api.stop_timeout": "0.3"}) as rig:
        world = rig.seed()
        server = rig.api.server
        assert server is not None
        tracker = server.asgi
        assert isinstance(tracker, RequestTracker)
        where = urlsplit(rig.url)
        # A client that sends its headers and half its body, then stalls.
        sock = socket.create_connection((where.hostname, where.port), timeout=WAIT)
        head = (
            f"PUT /v1/groups/{world.group.id}/dotfiles/.stalled HTTP/1.1\r\n"
            f"Host: {where.netloc}\r\nAuthorization: Bearer {rig.keys['admin']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"data": "half of it')
        deadline = time.monotonic() + WAIT
        while tracker.in_flight != 1:
            assert time.monotonic() < deadline, "the request never reached the app"
        answer: list[bytes] = []
        reader = threading.Thread(target=lambda: answer.append(_until_closed(sock)), daemon=True)
        reader.start()
        began = time.monotonic()
        rig.runtime.stop(timeout=3.0)
        took = time.monotonic() - began
        reader.join(WAIT)
        sock.close()
        assert took < 3.0, f"stop took {took:.2f}s"
        assert answer and answer[0].startswith(b"HTTP/1.1 503"), answer
        assert b'"code":"shutting_down"' in answer[0]
        assert rig.api.state.name == "STOPPED"
    with api_rig(tmp_path) as again:  # same database: the stalled write is not there
        assert again.rows(world.group.id) == []


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends before it closes the connection (the head and the
    body of an answer may come in separate segments)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
