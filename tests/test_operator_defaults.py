"""What an operator meets first (issue 14.5): the API's port, a bind error that names
the address, log lines with timestamps (text or JSON, level and format from options
after the subcommand too, or the environment), and per-service gauges in /metrics."""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import yaml
from jaseci_like_configs import defaults
from jaseci_like_kubes import manifest
from jaseci_like_services.api.config import ApiConfig
from jaseci_like_services.api.errors import ApiBindError
from jaseci_like_services.api.metrics import ServiceSample, service_registry
from jaseci_like_services.api.server import bind
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jaseci_like import ConfigApi, MetaService, Runtime, ServiceStartError, ServiceState
from jaseci_like.cli.output import SecretFilter, setup_logging
from tests.api_support import WAIT, ApiRig, api_rig
from tests.plugin_fixtures import Cli

pytest_plugins = ["tests.plugin_fixtures"]

#: ``2024-05-01T12:00:00.123Z LEVEL logger: message``
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) \S+: ")
SECRET = "hunter2-0e1d"


def _when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None, f"no offset in {text!r}"
    return moment


# -- the API's port ---------------------------------------------------------------------


def test_the_api_listens_on_8000_unless_configured() -> None:
    assert defaults("api")["port"] == 8000
    assert ApiConfig.model_fields["port"].default == 8000
    runtime = Runtime(environ={}, meta=MetaService.isolated())
    try:
        assert ConfigApi(runtime.hook).config_get("api")["port"] == 8000
    finally:
        runtime.stop()


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port another socket listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_taken_port_is_a_typed_error_naming_the_address(taken: int) -> None:
    with pytest.raises(ApiBindError) as caught:
        bind("127.0.0.1", taken)
    assert isinstance(caught.value, ServiceStartError)
    assert (caught.value.code, caught.value.exit_code) == ("api_bind_failed", 5)
    assert str(caught.value).startswith(f"cannot listen on 127.0.0.1:{taken}: ")
    assert "Address already in use" in str(caught.value)
    assert "api.port" in str(caught.value)  # what to do next


def test_an_address_of_no_interface_here_is_named_too() -> None:
    with pytest.raises(ApiBindError, match=r"cannot listen on \[2001:db8::1\]:8000: "):
        bind("2001:db8::1", 8000)  # documentation prefix: never an address of this machine


def test_up_on_a_taken_port_exits_5_with_the_address_and_no_traceback(cli: Cli, taken: int) -> None:
    done = cli.run("up", env={"JASECI_LIKE__API__PORT": str(taken)})
    assert done.returncode == 5, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    reason = f"api: cannot listen on 127.0.0.1:{taken}: Address already in use"
    assert reason in done.stderr, done.stderr
    assert "ready:" not in done.stdout


# -- logs ------------------------------------------------------------------------------


def test_up_takes_log_options_after_the_subcommand_and_logs_json(cli: Cli) -> None:
    with cli.serve("up", "--log-level", "info", "--log-format", "json") as up:
        up.wait_for_line("ready:")
        up.signal_and_wait(signal.SIGTERM)
    assert up.proc.returncode == 0, up.describe()
    lines = up.stderr.splitlines()
    docs = [json.loads(line) for line in lines]  # every line one JSON object
    assert all({"time", "level", "logger", "message"} <= set(doc) for doc in docs), docs
    assert all(_when(doc["time"]).utcoffset() == UTC.utcoffset(None) for doc in docs)
    serving = [d for d in docs if d["message"].startswith("api: serving on http://127.0.0.1:")]
    assert serving and serving[0]["level"] == "INFO", docs


def test_level_and_format_come_from_the_environment(cli: Cli) -> None:
    env = {"JASECI_LIKE_LOG_LEVEL": "INFO", "JASECI_LIKE_LOG_FORMAT": "json"}
    done = cli.run("config", "show", "api", env=env)
    assert done.returncode == 0, done.stderr
    docs = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(doc["level"] == "INFO" for doc in docs), done.stderr  # the migrations, at least


def test_text_lines_start_with_a_utc_timestamp_and_the_last_option_wins(cli: Cli) -> None:
    done = cli.run(
        "--log-format",
        "json",
        "config",
        "show",
        "api",
        "--log-format",
        "text",
        "--log-level",
        "info",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines, "nothing logged at info"
    assert all(TEXT_LINE.match(line) for line in lines), lines
    quiet = cli.run("--log-level", "info", "config", "show", "api", "--log-level", "error")
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_a_log_setting_that_is_not_one_of_the_choices_is_a_usage_error(cli: Cli) -> None:
    done = cli.run("plugins", env={"JASECI_LIKE_LOG_FORMAT": "xml"})
    assert done.returncode == 2
    assert "'xml' is not one of 'text', 'json'" in done.stderr


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger's handlers and level, put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_json_lines_carry_the_exception_with_its_secrets_masked() -> None:
    setup_logging("info", "json")
    (handler,) = logging.getLogger().handlers
    assert any(isinstance(f, SecretFilter) for f in handler.filters)
    out = _capture()
    log = logging.getLogger("tests.operator")
    url = f"redis://:{SECRET}@cache.internal:6379/0"
    try:
        raise ConnectionError(f"connecting to {url} failed")
    except ConnectionError:
        log.exception("lost %s", url)
    (line,) = out.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["level"] == "ERROR" and doc["logger"] == "tests.operator"
    assert doc["message"].startswith("lost redis://") and SECRET not in doc["message"]
    assert "Traceback" in doc["exception"] and "ConnectionError" in doc["exception"]
    assert SECRET not in line
    _when(doc["time"])


@pytest.mark.usefixtures("root_logging")
def test_an_option_after_the_subcommand_changes_only_itself() -> None:
    setup_logging("debug", "json")
    setup_logging(level="error")  # `--log-level error` after the subcommand
    assert logging.getLogger().level == logging.ERROR
    out = _capture()
    logging.getLogger("tests.operator").error("still %s", "json")
    assert json.loads(out.getvalue())["message"] == "still json"
    setup_logging(fmt="text")  # `--log-format text` after the subcommand
    assert logging.getLogger().level == logging.ERROR
    out = _capture()
    logging.getLogger("tests.operator").error("now text")
    assert TEXT_LINE.match(out.getvalue()), out.getvalue()


def _capture() -> io.StringIO:
    """What the command line's log handler writes from now on."""
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    handler.setStream(out)
    return out


# -- /metrics --------------------------------------------------------------------------


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_gauges_of_each_service_and_the_leader() -> None:
    samples = [
        ServiceSample("db", True, "RUNNING", True, 0, False),
        ServiceSample("redis", True, "FAILED", False, 3, True),
        ServiceSample("mail", False, "NOT_STARTED", False, 0, False),
    ]
    text = generate_latest(service_registry(samples, None)).decode()
    got = _samples(text)
    for name, state in (("db", "RUNNING"), ("redis", "FAILED"), ("mail", "NOT_STARTED")):
        for each in ServiceState.__members__:
            key = ("jaseci_like_service_state", (("service", name), ("state", each)))
            assert got[key] == (1.0 if each == state else 0.0), key
    assert got[("jaseci_like_service_healthy", (("service", "db"),))] == 1.0
    assert got[("jaseci_like_service_healthy", (("service", "redis"),))] == 0.0
    assert got[("jaseci_like_service_restarts_total", (("service", "redis"),))] == 3.0
    assert got[("jaseci_like_service_gave_up", (("service", "redis"),))] == 1.0
    assert got[("jaseci_like_service_enabled", (("service", "mail"),))] == 0.0
    assert not any(name == "jaseci_like_leader" for name, _ in got)  # no lease: no claim
    for leader in (True, False):
        led = _samples(generate_latest(service_registry(samples, leader)).decode())
        assert led[("jaseci_like_leader", ())] == float(leader)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiRig]:
    with api_rig(tmp_path_factory.mktemp("operator")) as started:
        yield started


def test_metrics_of_a_live_runtime_show_each_service(rig: ApiRig) -> None:
    supervisor = rig.runtime.supervisor
    with httpx.Client(base_url=rig.url, timeout=WAIT) as client:
        first = _samples(client.get("/metrics").text)
        # The counts are the supervisor's: a restart it records shows at the next scrape.
        db = supervisor.states.get("db")
        assert db is not None, sorted(supervisor.states)
        before = db.restarts
        db.restarts += 2
        try:
            second = _samples(client.get("/metrics").text)
        finally:
            db.restarts = before
    state = "jaseci_like_service_state"
    assert first[(state, (("service", "db"), ("state", "RUNNING")))] == 1.0
    assert first[(state, (("service", "db"), ("state", "FAILED")))] == 0.0
    assert first[(state, (("service", "kube"), ("state", "NOT_STARTED")))] == 1.0
    for name in ("api", "db", "group_config", "task"):
        assert first[("jaseci_like_service_healthy", (("service", name),))] == 1.0, name
    assert first[("jaseci_like_service_enabled", (("service", "kube"),))] == 0.0
    restarts = ("jaseci_like_service_restarts_total", (("service", "db"),))
    assert second[restarts] == first[restarts] + 2
    # The HTTP layer's own series are still there.
    assert any(name == "api_http_requests_total" for name, _ in second)


def test_the_probes_of_the_shipped_deployment_answer(rig: ApiRig) -> None:
    docs = [d for d in yaml.safe_load_all(manifest("runtime").read_text()) if d]
    (deployment,) = (d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    probes = [container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")]
    assert probes == ["/healthz", "/readyz"]
    with httpx.Client(base_url=rig.url, timeout=WAIT) as client:
        for path in probes:
            assert client.get(path).status_code == 200, path


@pytest.fixture
def thread_hook() -> Iterator[None]:
    before = threading.excepthook
    yield
    threading.excepthook = before


@pytest.mark.usefixtures("root_logging", "thread_hook")
def test_a_thread_that_crashes_is_one_json_line_with_its_secret_masked() -> None:
    setup_logging("warning", "json")
    out = _capture()

    def crash() -> None:
        raise RuntimeError(f"lost redis://:{SECRET}@cache.internal:6379/0")

    worker = threading.Thread(target=crash, name="cluster:probe")
    worker.start()
    worker.join(WAIT)
    (line,) = out.getvalue().splitlines()
    doc = json.loads(line)
    assert (doc["level"], doc["message"]) == ("ERROR", "thread cluster:probe crashed")
    assert "RuntimeError: lost redis://" in doc["exception"]
    assert SECRET not in line
