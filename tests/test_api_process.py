"""The API in a real `jaseci-like up` process: it answers, keys come from the command
line (printed once, revocable), and SIGTERM during writes ends cleanly: every
request finishes or fails cleanly, and nothing is half-written."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.api_support import SQLITE_FILE, WAIT, error_of
from tests.plugin_fixtures import STOP_BOUND, Cli, parse_table
from tests.servers import free_port

pytest_plugins = ["tests.plugin_fixtures"]

KEY_PREFIX = "api key: "


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def _key_of(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(KEY_PREFIX)]
    assert len(lines) == 1, f"expected one key line:\n{output}"
    token = lines[0].removeprefix(KEY_PREFIX).strip()
    assert token.startswith("jlk_") and output.count(token) == 1, output
    return token


@pytest.fixture
def port() -> int:
    return free_port()


def _env(port: int) -> dict[str, str]:
    return {"JASECI_LIKE__API__PORT": str(port)}


def _database(cli: Cli) -> Path:
    return Path(cli.base_env["XDG_DATA_HOME"]) / "jaseci-like" / SQLITE_FILE


def test_up_serves_the_api_and_keys_come_from_the_command_line(cli: Cli, port: int) -> None:
    created = _ok(cli.run("users", "create", "root@acme.test", "--role", "superadmin"))
    root_key = _key_of(created)
    extra = _ok(cli.run("api-keys", "create", "root@acme.test", "--label", "ci"))
    ci_key = _key_of(extra)
    listing = _ok(cli.run("api-keys", "list", "root@acme.test"))
    rows = parse_table(listing.splitlines())
    assert sorted(r["LABEL"] for r in rows) == ["ci", "first"]
    assert all(r["REVOKED"] == "-" for r in rows)
    assert root_key not in listing and ci_key not in listing
    ci_id = ci_key.split("_")[1]
    assert ci_id in {r["ID"] for r in rows}

    url = f"http://127.0.0.1:{port}"
    with cli.serve("up", env=_env(port)) as up:
        up.wait_for_line("ready:")
        with httpx.Client(base_url=url, timeout=WAIT) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/readyz").status_code == 200
            for key in (root_key, ci_key):
                me = client.get("/v1/users/me", headers={"Authorization": f"Bearer {key}"})
                assert me.status_code == 200 and me.json()["email"] == "root@acme.test"
            # Revoked from another process while the API runs: refused from then on.
            assert _ok(cli.run("api-keys", "revoke", ci_id)).strip() == f"revoked {ci_id}"
            refused = client.get("/v1/users/me", headers={"Authorization": f"Bearer {ci_key}"})
            assert error_of(refused) == (401, "unauthorized")
            assert "revoked" in refused.json()["message"] and ci_key not in refused.text
            still = client.get("/v1/users/me", headers={"Authorization": f"Bearer {root_key}"})
            assert still.status_code == 200 and still.json()["role"] == "superadmin"
            # A role changed from another process counts from the next request on.
            assert "is now admin" in _ok(cli.run("users", "set-role", "root@acme.test", "admin"))
            demoted = client.get("/v1/users/me", headers={"Authorization": f"Bearer {root_key}"})
            assert demoted.status_code == 200 and demoted.json()["role"] == "admin"
        took = up.signal_and_wait(signal.SIGTERM)
    assert up.proc.returncode == 0, up.describe()
    assert took < STOP_BOUND, f"SIGTERM to exit took {took:.2f}s"
    assert "Traceback" not in up.stderr
    assert root_key not in up.stdout + up.stderr and ci_key not in up.stdout + up.stderr


@dataclass
class Writes:
    """What the writer threads sent and what came back."""

    attempted: dict[str, str] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)


def _writer(url: str, key: str, n: int, writes: Writes, limit: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=WAIT) as client:
        for i in range(limit):
            path = f".w{n}/{i:04}"
            data = f"writer {n} line {i} " * 8
            with writes.lock:
                writes.attempted[path] = data
            try:
                answer = client.put(f"/v1/groups/research/dotfiles/{path}", json={"data": data})
            except httpx.TransportError:
                return  # the server closed: failed cleanly, the request may or may not be in
            with writes.lock:
                if answer.status_code == 201:
                    writes.acked.add(path)
                    writes.lock.notify_all()
                elif answer.status_code == 503 and answer.json()["code"] == "shutting_down":
                    writes.refused.append(path)
                    return
                else:
                    writes.bad.append(f"{path}: {answer.status_code} {answer.text}")
                    return


def test_sigterm_during_writes_finishes_or_fails_them_cleanly_nothing_half_written(
    cli: Cli, port: int
) -> None:
    key = _key_of(_ok(cli.run("users", "create", "root@acme.test", "--role", "superadmin")))
    _ok(cli.run("groups", "create", "research"))
    url = f"http://127.0.0.1:{port}"
    writes = Writes()
    with cli.serve("up", env=_env(port)) as up:
        up.wait_for_line("ready:")
        writers = [
            threading.Thread(target=_writer, args=(url, key, n, writes, 400), daemon=True)
            for n in range(4)
        ]
        for thread in writers:
            thread.start()
        with writes.lock:
            assert writes.lock.wait_for(lambda: len(writes.acked) >= 40 or writes.bad, WAIT)
        took = up.signal_and_wait(signal.SIGTERM)
        for thread in writers:
            thread.join(WAIT)
            assert not thread.is_alive()
    assert up.proc.returncode == 0, up.describe()
    assert took < STOP_BOUND, f"SIGTERM to exit took {took:.2f}s"
    assert "Traceback" not in up.stderr, up.stderr
    assert not writes.bad, writes.bad
    assert len(writes.attempted) < 4 * 400, "the writers never saw the server stop"
    with sqlite3.connect(_database(cli)) as db:
        rows = db.execute(
            "SELECT path, data, permission, status FROM gc_dotfiles ORDER BY id"
        ).fetchall()
    stored = {path: (data, permission, status) for path, data, permission, status in rows}
    assert len(stored) == len(rows), "a path was written twice"
    assert writes.acked <= set(stored), "an acknowledged write is missing"
    assert set(stored) <= set(writes.attempted), "a row nobody asked for"
    for path, (data, permission, status) in stored.items():
        assert (data, permission, status) == (writes.attempted[path], "644", "active"), path
