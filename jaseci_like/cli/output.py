"""Plain-text output of the command line: tables and logging."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

import click

from jaseci_like.config.secrets import mask_url


class SecretFilter(logging.Filter):
    """Masks secrets (known config secrets, passwords inside URLs) in every log
    line, whatever logged it: a library's own message included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_url(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # A traceback repeats the exception's message; handlers print this
            # (masked) text of it instead of formatting it again.
            record.exc_text = mask_url(_TRACEBACKS.formatException(record.exc_info))
        return True


_TRACEBACKS = logging.Formatter()


#: ``--log-format`` values (env JASECI_LIKE_LOG_FORMAT) and ``--log-level`` ones.
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC to the millisecond: lines of processes on several machines
    (and time zones) sort together."""
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _exception_text(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    """The record's traceback, masked (SecretFilter may have done so already)."""
    text = record.exc_text
    if not text and record.exc_info:
        text = formatter.formatException(record.exc_info)
    if record.stack_info:
        text = f"{text}\n{record.stack_info}" if text else record.stack_info
    return mask_url(text) if text else None


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z WARNING logger: message`` (traceback lines after)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        extra = _exception_text(record, self)
        return f"{line}\n{extra}" if extra else line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and exception), for
    log shippers that would otherwise split a traceback into many records."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = _exception_text(record, self)
        if extra:
            doc["exception"] = extra
        return json.dumps(doc, ensure_ascii=False, default=str)


_FORMATTERS: dict[str, type[logging.Formatter]] = {"text": TextFormatter, "json": JsonFormatter}


def setup_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Log to stderr at ``level`` in format ``fmt``; None keeps what is set (an
    option given after the subcommand changes only itself)."""
    root = logging.getLogger()
    current = next((h for h in root.handlers if isinstance(h, _CliHandler)), None)
    if fmt is None:
        fmt = current.fmt if current is not None else "text"
    if current is None or current.fmt != fmt:
        handler = _CliHandler(fmt)
        handler.setFormatter(_FORMATTERS[fmt]())
        handler.addFilter(SecretFilter())
        root.handlers[:] = [handler]
    if level is not None:
        root.setLevel(level.upper())
    elif current is None:
        root.setLevel(logging.WARNING)
    threading.excepthook = log_thread_crash


def log_thread_crash(args: threading.ExceptHookArgs) -> None:
    """A thread's uncaught exception as a log record: in the chosen format (one JSON
    object, not a bare traceback) and masked, rather than printed raw to stderr."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "unknown"
    crash = args.exc_value if args.exc_value is not None else args.exc_type()
    logging.getLogger("jaseci_like.threads").error("thread %s crashed", name, exc_info=crash)


class _CliHandler(logging.StreamHandler[TextIO]):
    """The command line's stderr handler; remembers its format."""

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.fmt = fmt


def echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, row, strict=True)]
    for row in [list(header), *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
