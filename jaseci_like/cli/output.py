"""Plain-text output of the command line: tables and logging."""

from __future__ import annotations

import logging
from collections.abc import Sequence

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


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, row, strict=True)]
    for row in [list(header), *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
