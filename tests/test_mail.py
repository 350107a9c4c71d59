"""The mail service against a real SMTP server (aiosmtpd on loopback).

The servers require STARTTLS (or speak TLS from the first byte) with a certificate
this module makes with ``trustme``, and accept one login. Every wait is on an
Event or Condition with a timeout; nothing sleeps.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from jaseci_like_services.mail import (
    HeaderInjection,
    InvalidAddress,
    MailAuthError,
    MailConfig,
    MailConnectionError,
    MailError,
    MailNotRunning,
    MailSendError,
    MailService,
    MailTemplate,
    TemplateNotFound,
    TemplateValuesError,
)
from jaseci_like_services.mail import plugin as mail_plugin

from jaseci_like import ConfigError, MemoryHook, MetaService, Runtime, ServiceState
from jaseci_like.config.layers import ConfigLayers
from jaseci_like.runtime import describe_error
from tests.mail_server import REFUSED_LOCAL_PART, MailServer, Tls

pytestmark = [
    # aiosmtpd itself uses its deprecated Session.login_data on every successful AUTH,
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
    # and warns about AUTH without STARTTLS even on an implicit-TLS server.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

USER = "mailer"
PASSWORD = "Pa55-w0rd-never-shown"
SENDER = "Jaseci Like <noreply@example.com>"

WELCOME = {
    "subject": "Welcome, $name",
    "text": "Hello $name,\nyour code is $code.\nCost: $$5\n",
    "html": "<p>Hello <b>$name</b>, your code is <code>${code}</code>. Cost: $$5</p>",
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test CA's certificate as a PEM file, for ``mail.ca_file``."""
    path = tmp_path_factory.mktemp("mail-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


def _serve(tls: Tls, cert: trustme.LeafCert | None, login: bool) -> Iterator[MailServer]:
    server = MailServer(tls=tls, cert=cert, credentials=(USER, PASSWORD) if login else None)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def starttls_server(cert: trustme.LeafCert) -> Iterator[MailServer]:
    """STARTTLS required before AUTH; AUTH required before MAIL."""
    yield from _serve("starttls", cert, login=True)


@pytest.fixture
def ssl_server(cert: trustme.LeafCert) -> Iterator[MailServer]:
    """Implicit TLS (SMTPS) with AUTH required."""
    yield from _serve("ssl", cert, login=True)


@pytest.fixture
def plain_server() -> Iterator[MailServer]:
    """No TLS, no AUTH: a trusted local relay."""
    yield from _serve("none", None, login=False)


def _security(server: MailServer) -> str:
    return {"none": "plain", "starttls": "starttls", "ssl": "ssl"}[server.tls]


def mail_section(server: MailServer, ca_file: str | None, **overrides: Any) -> dict[str, Any]:
    """A ``mail:`` config section that talks to ``server``."""
    section: dict[str, Any] = {
        "enabled": True,
        "host": server.host,
        "port": server.port,
        "security": _security(server),
        "timeout": 5.0,
        "sender": SENDER,
        "templates": {"welcome": WELCOME},
    }
    if server.authenticator is not None:
        section.update(username=USER, password=PASSWORD)
    if ca_file is not None:
        section["ca_file"] = ca_file
    section.update(overrides)
    return section


def write_config(path: Path, section: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"mail": section}), encoding="utf-8")
    return path


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Any]:
    """Build (not start) MailServices from a config file; stops them all afterwards."""
    made: list[MailService] = []

    def make(server: MailServer, ca_file: str | None, **overrides: Any) -> MailService:
        file = write_config(
            tmp_path / f"config-{len(made)}.yaml", mail_section(server, ca_file, **overrides)
        )
        service = MailService(MemoryHook(ConfigLayers(file=file, environ={})))
        made.append(service)
        return service

    yield make
    for service in made:
        service.stop(timeout=5.0)


@pytest.fixture
def mail(starttls_server: MailServer, ca_file: str, make_service: Any) -> MailService:
    """A running mail service on the STARTTLS + AUTH server."""
    service: MailService = make_service(starttls_server, ca_file).start()
    assert service.is_running(), service.error
    return service


def _parts(message: EmailMessage) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in message.walk():
        if not part.is_multipart():
            assert isinstance(part, EmailMessage)
            parts[part.get_content_type()] = str(part.get_content())
    return parts


def _no_password_in(caplog: pytest.LogCaptureFixture, *texts: object) -> None:
    for text in texts:
        assert PASSWORD not in str(text)
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
    assert PASSWORD not in caplog.text


# --------------------------------------------------------------------------- delivery


def test_mail_arrives_with_rendered_subject_both_bodies_and_addresses(
    mail: MailService, starttls_server: MailServer
) -> None:
    message_id = mail.send("Ada <ada@example.org>", "welcome", name="Ada & <Co>", code="X-42")

    got = starttls_server.wait_for_message(0)
    msg = got.message
    assert msg["Subject"] == "Welcome, Ada & <Co>"
    assert msg["From"] == SENDER
    assert msg["To"] == "Ada <ada@example.org>"
    assert got.mail_from == "noreply@example.com"
    assert got.rcpt_tos == ("ada@example.org",)
    assert msg["Message-ID"] == message_id
    assert message_id.startswith("<") and message_id.endswith("@example.com>")
    assert msg.get_content_type() == "multipart/alternative"
    parts = _parts(msg)
    assert set(parts) == {"text/plain", "text/html"}
    assert parts["text/plain"] == "Hello Ada & <Co>,\nyour code is X-42.\nCost: $5\n"
    # Values are HTML-escaped in the html body only.
    assert parts["text/html"].strip() == (
        "<p>Hello <b>Ada &amp; &lt;Co&gt;</b>, your code is <code>X-42</code>. Cost: $5</p>"
    )
    assert got.login == USER
    assert got.tls, "the session was not encrypted: STARTTLS did not happen"


def test_a_template_without_html_sends_plain_text(
    starttls_server: MailServer, ca_file: str, make_service: Any
) -> None:
    templates = {"note": {"subject": "Note", "text": "Just $what."}}
    service = make_service(starttls_server, ca_file, templates=templates).start()
    assert service.is_running(), service.error

    message_id = service.send(["a@example.org", "b@example.org"], "note", what="text")

    got = starttls_server.wait_for_message(0)
    assert got.message["Message-ID"] == message_id
    assert got.message.get_content_type() == "text/plain"
    assert str(got.message.get_content()) == "Just text.\n"
    assert got.rcpt_tos == ("a@example.org", "b@example.org")


def test_implicit_tls_delivers(ssl_server: MailServer, ca_file: str, make_service: Any) -> None:
    service = make_service(ssl_server, ca_file).start()
    assert service.is_running(), service.error

    message_id = service.send("bob@example.org", "welcome", name="Bob", code="7")

    got = ssl_server.wait_for_message(0)
    assert got.message["Message-ID"] == message_id
    assert got.message["Subject"] == "Welcome, Bob"
    assert got.tls and got.login == USER


def test_plain_connection_without_login_delivers(
    plain_server: MailServer, make_service: Any
) -> None:
    service = make_service(plain_server, None).start()
    assert service.is_running(), service.error

    message_id = service.send("carol@example.org", "welcome", name="Carol", code="1")

    got = plain_server.wait_for_message(0)
    assert got.message["Message-ID"] == message_id
    assert not got.tls and got.login is None


def test_concurrent_sends_share_one_connection_safely(
    mail: MailService, starttls_server: MailServer
) -> None:
    threads, per_thread = 6, 5
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sender(n: int) -> None:
        for i in range(per_thread):
            try:
                mid = mail.send(f"user{n}@example.org", "welcome", name=f"u{n}", code=str(i))
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            with lock:
                ids.append(mid)

    workers = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not errors
    total = threads * per_thread
    starttls_server.wait_for_message(total - 1)
    received = {got.message["Message-ID"] for got in starttls_server.messages}
    assert len(ids) == total
    assert received == set(ids)
    assert starttls_server.sessions == 1


# --------------------------------------------------------------------------- credentials


def test_wrong_password_fails_the_start_with_a_clear_error_and_no_password(
    starttls_server: MailServer,
    ca_file: str,
    make_service: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-" + PASSWORD
    service = make_service(starttls_server, ca_file, password=wrong).start()

    assert service.state is ServiceState.FAILED
    assert service.app is None
    error = service.error
    assert isinstance(error, MailAuthError)
    assert error.code == "mail_auth_failed"
    text = str(error)
    assert repr(USER) in text and "535" in text
    assert "mail.password" in text  # says what to fix
    assert wrong not in text and PASSWORD not in text
    # Not in the traceback either (the smtplib error it replaced is not chained).
    assert wrong not in "".join(traceback.format_exception(error))
    assert starttls_server.authenticator is not None
    assert starttls_server.authenticator.failures >= 1
    for record in caplog.records:
        assert wrong not in record.getMessage()
    assert wrong not in caplog.text
    assert wrong not in (describe_error(error) or "")
    assert wrong not in repr(service.config) and wrong not in repr(service.settings)
    assert "Skipping MailService" in caplog.text  # the failure was logged, masked
    assert starttls_server.messages == []


def test_password_changed_on_the_server_makes_send_raise_without_the_password(
    mail: MailService, starttls_server: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert starttls_server.authenticator is not None
    starttls_server.authenticator.accept(USER, "rotated")
    starttls_server.drop_connections()  # the next send must log in again

    with pytest.raises(MailAuthError) as caught:
        mail.send("ada@example.org", "welcome", name="Ada", code="1")

    _no_password_in(
        caplog, caught.value, repr(caught.value), "".join(traceback.format_exception(caught.value))
    )
    assert "refused the login" in str(caught.value)
    assert starttls_server.messages == []


def test_an_untrusted_certificate_fails_the_start(
    starttls_server: MailServer, make_service: Any
) -> None:
    service = make_service(starttls_server, None).start()  # system CAs only

    assert service.state is ServiceState.FAILED
    assert isinstance(service.error, MailConnectionError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(service.error)
    assert f"127.0.0.1:{starttls_server.port} (starttls)" in str(service.error)
    assert starttls_server.messages == []


def test_a_server_that_is_down_fails_the_start(
    starttls_server: MailServer, ca_file: str, make_service: Any
) -> None:
    starttls_server.stop()
    service = make_service(starttls_server, ca_file).start()

    assert service.state is ServiceState.FAILED
    assert isinstance(service.error, MailConnectionError)
    assert service.error.code == "mail_connection_failed"
    assert "ConnectionRefusedError" in str(service.error)
    assert PASSWORD not in str(service.error)


# --------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(
            {"subject": "Order $order", "text": "Hi $name", "html": "<p>Hi $name</p>"},
            "the subject uses $order, which the body lacks",
            id="subject-needs-what-the-body-lacks",
        ),
        pytest.param(
            {"subject": "Hi", "text": "Hi $name", "html": "<p>Hi $nmae</p>"},
            "the html body uses $nmae, which the text body lacks",
            id="html-and-text-differ",
        ),
        pytest.param(
            {"subject": "Hi", "text": "Hi $name, see $link", "html": "<p>Hi $name</p>"},
            "the text body uses $link, which the html body lacks",
            id="text-and-html-differ",
        ),
        pytest.param(
            {"subject": "Hi ${name", "text": "Hi $name"},
            "malformed placeholder '${name' at line 1, column 4",
            id="malformed",
        ),
        pytest.param(
            {"subject": "Hi\nBcc: x@example.org", "text": "Hi"},
            "the subject must be a single line",
            id="multi-line-subject",
        ),
    ],
)
def test_a_bad_template_is_a_config_error_and_nothing_starts(
    starttls_server: MailServer,
    ca_file: str,
    tmp_path: Path,
    template: dict[str, str],
    expected: str,
) -> None:
    section = mail_section(starttls_server, ca_file, templates={"receipt": template})
    file = write_config(tmp_path / "bad.yaml", section)

    # `jaseci-like up` builds a Runtime: it refuses the config before starting anything.
    with pytest.raises(ConfigError) as caught:
        Runtime(
            config_file=file,
            environ={},
            meta=MetaService.isolated(),
            discover=False,
            plugins={"mail": mail_plugin},
        )
    text = str(caught.value)
    assert "mail.templates.receipt" in text
    assert expected in text
    assert f"from file {file}" in text
    assert PASSWORD not in text

    # A service built from the same config keeps the error; its start fails saying why.
    service = MailService(MemoryHook(ConfigLayers(file=file, environ={})))
    assert isinstance(service.error, ConfigError)
    assert expected in str(service.error)
    service.start()
    assert service.state is ServiceState.FAILED and service.app is None
    assert isinstance(service.error, ConfigError) and expected in str(service.error)

    assert starttls_server.sessions == 0, "something connected to the server"


def test_send_refuses_missing_and_unknown_values(
    mail: MailService, starttls_server: MailServer
) -> None:
    with pytest.raises(TemplateValuesError) as missing:
        mail.send("ada@example.org", "welcome", name="Ada")
    assert missing.value.code == "mail_template_values"
    assert "missing values for code" in str(missing.value)
    assert "'welcome'" in str(missing.value)

    with pytest.raises(TemplateValuesError) as unknown:
        mail.send("ada@example.org", "welcome", name="Ada", code="1", nmae="typo")
    assert "no placeholder for nmae" in str(unknown.value)
    assert "it takes exactly: code, name" in str(unknown.value)

    with pytest.raises(TemplateValuesError) as none:
        mail.send("ada@example.org", "welcome", name=None, code="1")
    assert "None given for name" in str(none.value)

    with pytest.raises(TemplateNotFound) as no_template:
        mail.send("ada@example.org", "goodbye", name="Ada")
    assert no_template.value.code == "mail_template_not_found"
    assert "configured: welcome" in str(no_template.value)

    # Nothing reached the server; the connection is still good for a correct send.
    mid = mail.send("ada@example.org", "welcome", name="Ada", code="1")
    assert starttls_server.wait_for_message(0).message["Message-ID"] == mid
    assert len(starttls_server.messages) == 1


def test_values_named_like_the_parameters_are_plain_values(
    starttls_server: MailServer, ca_file: str, make_service: Any
) -> None:
    templates = {"t": {"subject": "For $to", "text": "Template $template to $to."}}
    service = make_service(starttls_server, ca_file, templates=templates).start()

    service.send("ada@example.org", "t", to="Ada", template="T1")

    got = starttls_server.wait_for_message(0)
    assert got.message["Subject"] == "For Ada"
    assert got.rcpt_tos == ("ada@example.org",)


# --------------------------------------------------------------------------- injection


@pytest.mark.parametrize(
    "name",
    ["Ada\r\nBcc: victim@example.net", "Ada\nBcc: victim@example.net", "Ada\u2028X: y"],
)
def test_a_line_break_in_a_subject_value_is_refused(
    mail: MailService, starttls_server: MailServer, name: str
) -> None:
    with pytest.raises(HeaderInjection) as caught:
        mail.send("ada@example.org", "welcome", name=name, code="1")
    assert caught.value.code == "mail_header_injection"
    assert "'name'" in str(caught.value) and "Subject" in str(caught.value)

    mid = mail.send("ada@example.org", "welcome", name="Ada", code="1")
    got = starttls_server.wait_for_message(0)
    assert got.message["Message-ID"] == mid  # the refused one was never sent
    assert got.rcpt_tos == ("ada@example.org",)
    assert got.message["Bcc"] is None


def test_line_breaks_in_body_values_are_fine(
    mail: MailService, starttls_server: MailServer
) -> None:
    mail.send("ada@example.org", "welcome", name="Ada", code="line1\nline2")
    body = _parts(starttls_server.wait_for_message(0).message)["text/plain"]
    assert "your code is line1\nline2." in body


@pytest.mark.parametrize(
    ("to", "error"),
    [
        ("ada@example.org\r\nBcc: victim@example.net", HeaderInjection),
        ("not-an-address", InvalidAddress),
        ("ada@example.org, eve@example.net", InvalidAddress),
        ([], InvalidAddress),
        (["ok@example.org", "bad@"], InvalidAddress),
    ],
)
def test_bad_recipients_are_refused_before_anything_is_sent(
    mail: MailService, starttls_server: MailServer, to: Any, error: type[MailError]
) -> None:
    with pytest.raises(error):
        mail.send(to, "welcome", name="Ada", code="1")
    mail.send("ok@example.org", "welcome", name="Ada", code="2")
    got = starttls_server.wait_for_message(0)
    assert got.rcpt_tos == ("ok@example.org",)
    assert len(starttls_server.messages) == 1


def test_recipients_the_server_refuses_are_reported(
    mail: MailService, starttls_server: MailServer
) -> None:
    refused = f"{REFUSED_LOCAL_PART}@example.org"
    with pytest.raises(MailSendError) as partial:
        mail.send(["ada@example.org", refused], "welcome", name="Ada", code="1")
    assert set(partial.value.refused) == {refused}
    assert partial.value.refused[refused][0] == 550
    got = starttls_server.wait_for_message(0)
    assert got.rcpt_tos == ("ada@example.org",)
    assert got.message["Message-ID"] == partial.value.message_id

    with pytest.raises(MailSendError) as every:
        mail.send(refused, "welcome", name="Ada", code="2")
    assert "refused every recipient" in str(every.value)
    assert every.value.message_id is None


# --------------------------------------------------------------------------- connection


def test_health_is_noop(mail: MailService, starttls_server: MailServer) -> None:
    before = starttls_server.handler.commands["NOOP"]
    assert mail.health() is True
    assert starttls_server.handler.commands["NOOP"] == before + 1


def test_send_reconnects_after_the_server_dropped_the_connection(
    mail: MailService, starttls_server: MailServer
) -> None:
    first = mail.send("ada@example.org", "welcome", name="Ada", code="1")
    assert starttls_server.wait_for_message(0).message["Message-ID"] == first
    assert starttls_server.drop_connections() == 1

    second = mail.send("ada@example.org", "welcome", name="Ada", code="2")

    assert starttls_server.wait_for_message(1).message["Message-ID"] == second
    assert starttls_server.sessions == 2
    assert mail.app.reconnects == 1


def test_send_reconnects_after_the_server_restarted(
    mail: MailService, starttls_server: MailServer
) -> None:
    starttls_server.restart()

    mid = mail.send("ada@example.org", "welcome", name="Ada", code="1")

    got = starttls_server.wait_for_message(0)
    assert got.message["Message-ID"] == mid
    assert got.tls and got.login == USER  # the new session did STARTTLS and AUTH again
    assert mail.app.reconnects == 1


def test_health_reconnects_after_a_drop(mail: MailService, starttls_server: MailServer) -> None:
    starttls_server.drop_connections()
    assert mail.health() is True
    assert starttls_server.sessions == 2


def test_send_fails_clearly_when_the_server_is_gone(
    mail: MailService, starttls_server: MailServer
) -> None:
    starttls_server.stop()
    with pytest.raises(MailConnectionError) as caught:
        mail.send("ada@example.org", "welcome", name="Ada", code="1")
    assert f"127.0.0.1:{starttls_server.port}" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_stop_quits_and_closes_the_connection(
    mail: MailService, starttls_server: MailServer
) -> None:
    assert starttls_server.wait_for_connections(1)

    mail.stop()

    assert mail.state is ServiceState.STOPPED and mail.app is None
    assert starttls_server.handler.quit.wait(5.0), "the client did not send QUIT"
    assert starttls_server.wait_for_connections(0, timeout=5.0)
    with pytest.raises(MailNotRunning):
        mail.send("ada@example.org", "welcome", name="Ada", code="1")
    assert mail.health() is False


# --------------------------------------------------------------------------- defaults


def test_disabled_by_default() -> None:
    service = MailService(MemoryHook(ConfigLayers(environ={})))
    assert service.enabled is False
    assert service.start().state is ServiceState.NOT_STARTED
    with pytest.raises(MailNotRunning) as caught:
        service.send("ada@example.org", "welcome")
    assert "mail.enabled: false" in str(caught.value)


def test_the_plugin_registers_the_mail_service() -> None:
    assert mail_plugin.jaseci_like_services() == [MailService]


def test_the_runtime_starts_the_mail_service_from_a_config_file(
    starttls_server: MailServer, ca_file: str, tmp_path: Path
) -> None:
    file = write_config(tmp_path / "app.yaml", mail_section(starttls_server, ca_file))
    meta = MetaService.isolated()
    runtime = Runtime(
        config_file=file, environ={}, meta=meta, discover=False, plugins={"mail": mail_plugin}
    )
    try:
        hook = runtime.start()
        service = hook.mail
        assert isinstance(service, MailService) and service.is_running()
        mid = service.send("ada@example.org", "welcome", name="Ada", code="1")
        assert starttls_server.wait_for_message(0).message["Message-ID"] == mid
        (row,) = [r for r in runtime.status() if r.name == "mail"]
        assert row.healthy is True and row.error is None
    finally:
        runtime.stop()
    assert starttls_server.wait_for_connections(0, timeout=5.0)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"username": "u", "password": None}, "mail.password = None"),
        ({"password": "p"}, "a password needs a username"),
        ({"sender": "nobody"}, "mail.sender = 'nobody'"),
        ({"security": "tls"}, "mail.security = 'tls'"),
        ({"templates": {"t": {"subject": "s", "text": "t", "body": "b"}}}, "unknown key"),
    ],
)
def test_other_bad_settings_are_config_errors(
    plain_server: MailServer, tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    file = write_config(tmp_path / "bad.yaml", mail_section(plain_server, None, **overrides))
    service = MailService(MemoryHook(ConfigLayers(file=file, environ={})))
    assert isinstance(service.error, ConfigError)
    assert expected in str(service.error)
    assert "'p'" not in str(service.error)  # a password value is masked


def test_port_defaults_to_the_standard_port_of_the_security() -> None:
    base = {"host": "h", "timeout": 1.0, "sender": "a@example.org"}
    ports = {
        security: MailConfig.model_validate({**base, "security": security}).effective_port
        for security in ("plain", "starttls", "ssl")
    }
    assert ports == {"plain": 25, "starttls": 587, "ssl": 465}


def test_template_rendering_without_a_server() -> None:
    template = MailTemplate.model_validate(WELCOME)
    assert template.fields == {"name", "code"}
    rendered = template.render({"name": "A", "code": 3})
    assert rendered.subject == "Welcome, A"
    assert rendered.text == "Hello A,\nyour code is 3.\nCost: $5\n"
