"""A FastAPI host under uvicorn in a subprocess (issue 15): the runtime runs on uvicorn's
loop, 16 concurrent clients send 200 requests each to a handler awaiting the db
service (SQLite, then PostgreSQL), the redis client and a task submission: no error,
and uvicorn exits cleanly (no crash) when told to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 16
REQUESTS = 200
#: Runs per backend (the issue asks 5; 1 by default, the cores are shared):
#: JASECI_LIKE_EMBED_RUNS=5 pytest tests/test_embed_uvicorn.py
RUNS = int(os.environ.get("JASECI_LIKE_EMBED_RUNS", "1"))
#: Seconds to start (plugins, migrations) and to stop: generous, the cores are shared.
START_WAIT = 120.0


def serve_and_hammer(env: dict[str, str]) -> tuple[int, list[str], str, int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.embed_host:app",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "Application startup complete" in line:
                started.set()
        started.set()  # ended: the waiting test looks at why

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    errors: list[str] = []
    try:
        assert started.wait(START_WAIT), "uvicorn did not start:\n" + "".join(lines)
        assert any("Application startup complete" in line for line in lines), (
            "uvicorn did not start:\n" + "".join(lines)
        )

        def client(k: int) -> int:
            done = 0
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                for i in range(REQUESTS):
                    try:
                        got = http.get(f"/work/{k * REQUESTS + i}")
                    except httpx.HTTPError as exc:
                        errors.append(repr(exc))
                        continue
                    if got.status_code != 200 or got.json()["n"] != k * REQUESTS + i:
                        errors.append(f"{got.status_code} {got.text[:200]}")
                    else:
                        done += 1
            return done

        with ThreadPoolExecutor(CLIENTS) as pool:
            ok = sum(pool.map(client, range(CLIENTS)))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(START_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        reader.join(10)
    return ok, errors, "".join(lines), code


def environ(db_url: str | None, redis_url: str, tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path),
        "JASECI_LIKE__API__PORT": "0",
        "JASECI_LIKE__REDIS__ENABLED": "true",
        "JASECI_LIKE__REDIS__URL": redis_url,
    }
    if db_url is not None:
        env["JASECI_LIKE__DB__URL"] = db_url
    return env


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_uvicorn_host_serves_every_request(
    backend: str, run: int, request: pytest.FixtureRequest, redis_url: str, tmp_path: Path
) -> None:
    db_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    ok, errors, log, code = serve_and_hammer(environ(db_url, redis_url, tmp_path))
    assert errors == [], f"{len(errors)} errors, first: {errors[:3]}\n{log}"
    assert ok == CLIENTS * REQUESTS
    assert code == 0, f"uvicorn exited {code}\n{log}"  # a crash (SIGSEGV) is -11
    assert "Traceback" not in log, log
