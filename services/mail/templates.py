"""Mail templates: a subject, a text body and an optional HTML body.

Placeholders use :class:`string.Template` syntax: ``$name`` or ``${name}``, and
``$$`` for a literal dollar sign. It has no attribute or index access (unlike
``str.format``), so a template from config cannot reach into the values it is given.

The parts are checked together when the config is validated: the text and HTML
bodies are alternatives of one message (a reader sees one of them), so both must use
the same placeholders, and the subject may only use placeholders the body uses. A
part using a placeholder the others lack is almost always a typo that would
otherwise surface only when the first mail is sent.

>>> t = MailTemplate(subject="Hi $name", text="Hello $name", html="<p>Hello $name</p>")
>>> t.render({"name": "<Ada>"}).html
'<p>Hello &lt;Ada&gt;</p>'
"""

from __future__ import annotations

import html as html_escape
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Self

from jaseci_like_services.mail.addresses import has_line_break
from jaseci_like_services.mail.errors import HeaderInjection, TemplateValuesError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def placeholders(text: str) -> frozenset[str]:
    """The placeholder names ``text`` uses; ``ValueError`` naming a malformed one."""
    for match in Template.pattern.finditer(text):
        if match.group("invalid") is None:
            continue
        start = match.start()  # the "$" itself
        line = text.count("\n", 0, start) + 1
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        fragment = text[start : start + 12].split("\n", 1)[0]
        raise ValueError(
            f"malformed placeholder {fragment!r} at line {line}, column {column}: "
            "write $name or ${name}, and $$ for a literal $"
        )
    return frozenset(Template(text).get_identifiers())


def _names(found: frozenset[str]) -> str:
    return ", ".join(f"${name}" for name in sorted(found)) or "none"


@dataclass(frozen=True)
class Rendered:
    """The parts of one message, placeholders filled in."""

    subject: str
    text: str
    html: str | None


class MailTemplate(BaseModel):
    """One named template of ``mail.templates``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1)
    text: str = Field(min_length=1)
    #: Without it the message is plain text only.
    html: str | None = None

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if has_line_break(value):
            raise ValueError("the subject must be a single line")
        placeholders(value)
        return value

    @field_validator("text", "html")
    @classmethod
    def _well_formed(cls, value: str | None) -> str | None:
        if value is not None:
            placeholders(value)
        return value

    @model_validator(mode="after")
    def _same_placeholders(self) -> Self:
        body = placeholders(self.text)
        if self.html is not None:
            html = placeholders(self.html)
            if html != body:
                only_html, only_text = html - body, body - html
                where = (
                    f"the html body uses {_names(only_html)}, which the text body lacks"
                    if only_html
                    else f"the text body uses {_names(only_text)}, which the html body lacks"
                )
                raise ValueError(
                    f"{where}; text and html are alternatives of one message and "
                    "must use the same placeholders"
                )
        extra = placeholders(self.subject) - body
        if extra:
            raise ValueError(
                f"the subject uses {_names(extra)}, which the body lacks; "
                "the subject may only use placeholders of the body"
            )
        return self

    @property
    def fields(self) -> frozenset[str]:
        """The names ``render`` needs values for, no more and no less."""
        return placeholders(self.text)

    def render(self, values: Mapping[str, object], name: str = "") -> Rendered:
        """Fill in every part; HTML-escape values in the html body.

        Refuses missing or unknown values (:class:`TemplateValuesError`) and a value
        bound for the subject that holds a line break (:class:`HeaderInjection`).
        """
        label = f"mail template {name!r}" if name else "mail template"
        self.check_values(values, label)
        strings = {key: str(value) for key, value in values.items()}
        for key in sorted(placeholders(self.subject)):
            if has_line_break(strings[key]):
                raise HeaderInjection(
                    f"{label}: value {key!r} goes into the Subject header and contains "
                    "a line break; refused (header injection)"
                )
        escaped = {key: html_escape.escape(value) for key, value in strings.items()}
        return Rendered(
            subject=Template(self.subject).substitute(strings),
            text=Template(self.text).substitute(strings),
            html=None if self.html is None else Template(self.html).substitute(escaped),
        )

    def check_values(self, values: Mapping[str, object], label: str = "mail template") -> None:
        """:class:`TemplateValuesError` unless ``values`` gives exactly :attr:`fields` (no None)."""
        given = frozenset(values)
        missing, unknown = self.fields - given, given - self.fields
        # None would render as the text "None": almost surely a caller's bug.
        nones = sorted(key for key, value in values.items() if value is None)
        if not (missing or unknown or nones):
            return
        problems = []
        if missing:
            problems.append(f"missing values for {', '.join(sorted(missing))}")
        if unknown:
            problems.append(f"no placeholder for {', '.join(sorted(unknown))}")
        if nones:
            problems.append(f"None given for {', '.join(nones)}")
        raise TemplateValuesError(
            f"{label}: {'; '.join(problems)} (it takes exactly: "
            f"{', '.join(sorted(self.fields)) or 'no values'})"
        )
