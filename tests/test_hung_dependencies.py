"""A dependency that accepts connections and never answers stalls nothing (issue 12.6).

Every start and health check is bounded by its service's timeout, a stop does not
wait for a start that cannot be cut short, the runtime loop never cancels work
mid-way (which printed an aiosqlite CancelledError traceback), and ``status``
against a silent SMTP server answers within a bound derived from ``mail.timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from jaseci_like_services.db.service import DbService
from jaseci_like_services.kube.service import KubeService
from jaseci_like_services.mail import plugin as mail_plugin
from jaseci_like_services.mail.service import MailService

from jaseci_like import CommonService, MemoryHook, MetaService, Runtime, ServiceState
from jaseci_like.config.layers import ConfigLayers
from jaseci_like.errors import HealthCheckTimeout
from jaseci_like.loop import RuntimeLoop
from tests.plugin_fixtures import FREE_API_PORT, Cli, parse_table
from tests.silent_server import SilentServer

pytest_plugins = ["tests.plugin_fixtures"]

#: mail.timeout in these tests: long enough to tell one wait from two, short enough
#: to keep the tests quick.
MAIL_TIMEOUT = 3.0
#: Seconds a `jaseci-like status` may take on top of mail.timeout: starting and
#: stopping the embedded services on a busy machine; generous on purpose.
CLI_MARGIN = 30.0
#: Generous bound for anything that must merely happen, not happen fast.
EVENTUALLY = 10.0


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    """Accepts TCP connections on loopback and never writes a byte."""
    with SilentServer() as server:
        yield server


@pytest.fixture
def muting_smtp() -> Iterator[SilentServer]:
    """Speaks SMTP until muted, then answers nothing."""
    with SilentServer(smtp=True) as server:
        yield server


def mail_section(server: SilentServer) -> dict[str, object]:
    return {
        "enabled": True,
        "host": server.host,
        "port": server.port,
        "security": "plain",
        "timeout": MAIL_TIMEOUT,
    }


# --------------------------------------------------------------------------- the command


def test_status_against_a_silent_smtp_server_is_bounded_and_says_why(
    cli: Cli, silent: SilentServer
) -> None:
    config = cli.cwd / "app.yaml"
    config.write_text(yaml.safe_dump({"mail": mail_section(silent)}))

    began = time.monotonic()
    result = cli.run("status", "--local", "--config", str(config), env=FREE_API_PORT)
    took = time.monotonic() - began

    assert result.returncode == 5, result.stderr
    rows = {r["SERVICE"]: r for r in parse_table(result.stdout.splitlines())}
    mail = rows["mail"]
    assert mail["STATE"] in {"FAILED", "STARTED"}  # STARTED: the supervisor's retry
    assert mail["HEALTH"] != "ok"
    assert f"127.0.0.1:{silent.port} (plain)" in mail["ERROR"]
    assert f"sent no greeting within {MAIL_TIMEOUT:g} s (mail.timeout)" in mail["ERROR"]
    assert rows["db"]["HEALTH"] == "ok"
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "CancelledError" not in output
    assert took < MAIL_TIMEOUT + CLI_MARGIN, f"status took {took:.1f}s\n{output}"


# --------------------------------------------------------------------------- mail


def test_a_mail_start_against_a_silent_server_fails_within_its_timeout(
    silent: SilentServer,
) -> None:
    service = MailService(MemoryHook())
    service.enabled = True
    service.settings = service.config_schema.model_validate(
        {**dict(MailService.default_config), **mail_section(silent)}
    )

    began = time.monotonic()
    service.start()
    took = time.monotonic() - began

    assert service.state is ServiceState.FAILED
    assert "sent no greeting within 3 s (mail.timeout)" in str(service.error)
    # One timeout, not one per step: bounded by it (plus scheduling slack).
    assert took < 2 * MAIL_TIMEOUT, took


def test_status_bounds_a_health_check_that_gets_no_answer(
    muting_smtp: SilentServer, tmp_path: Path
) -> None:
    """RUNNING, then the server goes silent: status waits mail.timeout once and says so
    (it used to wait for the NOOP, then again for a reconnect)."""
    file = tmp_path / "app.yaml"
    file.write_text(
        yaml.safe_dump(
            {"mail": mail_section(muting_smtp), "runtime": {"supervisor": {"enabled": False}}}
        )
    )
    runtime = Runtime(
        config_file=file,
        environ={},
        meta=MetaService.isolated(),
        discover=False,
        plugins={"mail": mail_plugin},
    )
    try:
        hook = runtime.start()
        assert hook.mail.is_running()
        muting_smtp.mute()

        began = time.monotonic()
        (row,) = [r for r in runtime.status() if r.name == "mail"]
        took = time.monotonic() - began

        assert row.healthy is False
        assert row.error is not None and f"within {MAIL_TIMEOUT:g} s" in row.error
        assert took < 2 * MAIL_TIMEOUT, took
        assert muting_smtp.accepted == 1  # no reconnect was tried on a silent server
    finally:
        runtime.stop()


@pytest.mark.parametrize(
    ("service", "section"),
    [
        (MailService, {"host": "127.0.0.1", "timeout": 7.5}),
        (DbService, {"connect_timeout": 7.5}),
        (KubeService, {"request_timeout": 7.5}),
    ],
)
def test_a_health_check_waits_as_long_as_the_services_own_timeout(
    service: type[CommonService], section: dict[str, object], tmp_path: Path
) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(yaml.safe_dump({service.service_name(): section}))
    built = service(MemoryHook(ConfigLayers(file=file, environ={})))
    assert built.error is None
    assert built.health_timeout() == 7.5


# --------------------------------------------------------------------------- the core


class Hanging(CommonService):
    """``health()`` and (optionally) ``run()`` wait until the test lets them go."""

    name = "hanging"
    default_config: ClassVar[dict[str, object]] = {"enabled": True}
    default_health_timeout = 0.5

    def __init__(self, hook: MemoryHook | None = None) -> None:
        self.release_health = threading.Event()
        self.release_run = threading.Event()
        self.block_run = False
        self.in_run = threading.Event()
        self.torn_down = threading.Event()
        self.health_calls = 0
        super().__init__(hook)

    def run(self, hook: MemoryHook | None = None) -> None:
        self.in_run.set()
        if self.block_run:
            self.release_run.wait(EVENTUALLY)
        self.app = object()

    def teardown(self) -> None:
        self.torn_down.set()

    def health(self) -> bool:
        self.health_calls += 1
        return self.release_health.wait(EVENTUALLY)


def test_a_health_check_that_hangs_times_out_and_is_not_piled_up() -> None:
    service = Hanging().start()
    try:
        began = time.monotonic()
        with pytest.raises(HealthCheckTimeout, match=r"did not answer within 0\.5 s"):
            service.check_health()
        assert 0.5 <= time.monotonic() - began < EVENTUALLY
        # Asked again while the first still hangs: the same check, no second thread.
        with pytest.raises(HealthCheckTimeout):
            service.check_health()
        assert service.health_calls == 1

        service.release_health.set()
        assert service.check_health(timeout=EVENTUALLY) is True
    finally:
        service.release_health.set()
        service.stop()


def test_stop_during_a_start_returns_and_the_start_then_stops_the_service() -> None:
    service = Hanging()
    service.block_run = True
    starting = threading.Thread(target=service.start)
    starting.start()
    assert service.in_run.wait(EVENTUALLY)

    stopping = threading.Thread(target=service.stop, kwargs={"timeout": 0.5})
    stopping.start()
    stopping.join(EVENTUALLY)
    returned = not stopping.is_alive()
    service.release_run.set()  # let the start finish either way
    starting.join(EVENTUALLY)
    stopping.join(EVENTUALLY)

    assert returned, "stop waited for a start it cannot cut short"
    assert service.torn_down.wait(EVENTUALLY)
    assert service.state is ServiceState.STOPPED
    assert service.app is None


def test_the_loop_lets_unfinished_work_end_instead_of_cancelling_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = RuntimeLoop(name="test-drain")
    gate = threading.Event()

    async def closing() -> str:
        # Stands for an engine closing its connections in a worker thread.
        await asyncio.to_thread(gate.wait, EVENTUALLY)
        return "closed"

    future = loop.submit(closing())
    with caplog.at_level(logging.WARNING, logger="jaseci_like.loop"):
        assert loop.stop(timeout=0.2) is False
    gate.set()

    assert future.result(EVENTUALLY) == "closed"  # not CancelledError
    (record,) = [r for r in caplog.records if r.name == "jaseci_like.loop"]
    assert "did not stop within 0.20s" in record.getMessage()
    assert "closing" in record.getMessage()
    assert "\n" not in record.getMessage()
