"""The bad-input corpus, one row per case.

Each case names a door of the runtime (a config file, environment variables, a
command line, Kubernetes manifests, a plugin, an HTTP request), the input, and
what must come back:

- :class:`Refused`: a typed error: the command's exit status (CLI), the error's
  ``code`` (in process; a plugin's status), or the HTTP status and JSON ``code``
  (API); ``says`` are fragments the message must contain (what was wrong), and
  ``hides`` fragments it must not (secrets, raw invisible characters);
- :class:`Stored`: injection-looking text that is valid input and must be stored
  byte for byte, as one new dotfile row and nothing else;
- :class:`Answered`: a read that must answer normally (a wildcard taken literally).

Whatever the expectation, no traceback reaches the user and, except for
:class:`Stored`, the stored data (config globs, groups, users, dotfiles, keys) is
exactly as before. The group ``research`` (domain ``default``) holds ``.bashrc``;
``{name}`` in an argument is the path of the file ``files[name]`` written for the case.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from jaseci_like_services.group_config.models import dotfiles

from jaseci_like.repository import Order
from jaseci_like.repository.pagination import encode_cursor

GROUP = "research"
SECRET = "hunter2-8f3b1c"
RTL = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: shows text reversed on a terminal

#: Exit statuses of the command line (jaseci_like/cli/main.py, group_config errors).
USAGE, CONFIG, NOT_STARTED, NOT_FOUND, EXISTS, INVALID = 2, 3, 5, 8, 9, 10


@dataclass(frozen=True)
class Refused:
    code: int | str
    says: tuple[str, ...]
    status: int | None = None
    hides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stored:
    path: str
    data: str


@dataclass(frozen=True)
class Answered:
    says: tuple[str, ...]


Expect = Refused | Stored | Answered


@dataclass(frozen=True)
class ConfigFileCase:
    """``jaseci-like config show --config FILE`` with ``text`` as FILE."""

    door: ClassVar[str] = "config file"
    id: str
    text: str | bytes
    expect: Refused


@dataclass(frozen=True)
class EnvCase:
    """A command (``config show`` unless told) with extra environment variables."""

    door: ClassVar[str] = "environment"
    id: str
    env: Mapping[str, str]
    expect: Refused
    args: tuple[str, ...] = ("config", "show")


@dataclass(frozen=True)
class CliCase:
    """A command line; ``subprocess`` runs the real console script, else click's
    runner runs the same command objects in this process."""

    door: ClassVar[str] = "command line"
    id: str
    args: tuple[str, ...]
    expect: Expect
    files: Mapping[str, bytes] = field(default_factory=dict)
    subprocess: bool = False


@dataclass(frozen=True)
class KubeCase:
    """A service's Kubernetes manifests (``text``), rendered by the kube service."""

    door: ClassVar[str] = "kubernetes manifests"
    id: str
    text: str
    expect: Refused
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PluginCase:
    """A plugin distribution installed next to the built-in ones; ``plugin`` is its
    entry-point name. It must be reported broken, the others load."""

    door: ClassVar[str] = "plugin registration"
    id: str
    plugin: str
    expect: Refused


@dataclass(frozen=True)
class ApiCase:
    """One HTTP request to the API as a superadmin (``auth``: the key sent)."""

    door: ClassVar[str] = "api"
    id: str
    method: str
    path: str
    expect: Expect
    json: Any = None
    body: bytes | None = None
    auth: str = "key"  # "key", "none" or "bad"


Case = ConfigFileCase | EnvCase | CliCase | KubeCase | PluginCase | ApiCase


def _refused(code: int | str, *says: str, hides: tuple[str, ...] = ()) -> Refused:
    return Refused(code, says, hides=hides)


def _http(status: int, code: str, *says: str) -> Refused:
    return Refused(code, says, status=status)


# -- config files ---------------------------------------------------------------------------

CONFIG_FILES = [
    ConfigFileCase("yaml-unclosed-flow", "db: [1, 2\n", _refused(CONFIG, "YAML syntax error")),
    ConfigFileCase(
        "yaml-tab-indent",
        "db:\n\tpool_size: 2\n",
        _refused(CONFIG, "YAML syntax error", "line 2", "'\\t'"),
    ),
    ConfigFileCase(
        "yaml-nul-byte",
        b"db: {pool_size: 2}\x00\n",
        _refused(CONFIG, "YAML syntax error", "special characters are not allowed"),
    ),
    ConfigFileCase(
        "not-utf8", b"db: {echo: caf\xe9}\n", _refused(CONFIG, "cannot be read", "utf-8")
    ),
    ConfigFileCase(
        "duplicate-section",
        "db: {pool_size: 2}\ndb: {pool_size: 3}\n",
        _refused(CONFIG, "found the key 'db' twice", "line 2"),
    ),
    ConfigFileCase(
        "duplicate-key",
        "group_config:\n  max_dotfiles: 5\n  max_dotfiles: 6\n",
        _refused(CONFIG, "found the key 'max_dotfiles' twice"),
    ),
    ConfigFileCase(
        "top-level-list", "- db\n- redis\n", _refused(CONFIG, "top level must be a mapping", "list")
    ),
    ConfigFileCase("top-level-scalar", "just text\n", _refused(CONFIG, "top level", "not str")),
    ConfigFileCase(
        "section-is-list", "db: [1, 2]\n", _refused(CONFIG, "section 'db' must be a mapping")
    ),
    ConfigFileCase(
        "section-is-number", "group_config: 5\n", _refused(CONFIG, "section 'group_config'", "int")
    ),
    ConfigFileCase(
        "section-name-not-text", "1: {a: 1}\n", _refused(CONFIG, "section 1", "must be text")
    ),
    ConfigFileCase(
        "wrong-type",
        "db: {pool_size: many}\n",
        _refused(CONFIG, "db.pool_size = 'many'", "valid integer"),
    ),
    ConfigFileCase(
        "fraction-for-integer",
        "db: {pool_size: 1.5}\n",
        _refused(CONFIG, "db.pool_size = 1.5", "fractional part"),
    ),
    ConfigFileCase(
        "unknown-key", "db: {poolsize: 5}\n", _refused(CONFIG, "db.poolsize", "unknown key")
    ),
    ConfigFileCase(
        "unknown-nested-key",
        "group_config: {retry: {tries: 3}}\n",
        _refused(CONFIG, "group_config.retry.tries", "unknown key"),
    ),
    ConfigFileCase(
        "unknown-section",
        "nosuch: {a: 1}\n",
        _refused(CONFIG, "section 'nosuch'", "no service of that name"),
    ),
    ConfigFileCase(
        "unknown-runtime-key",
        "runtime: {stop_timeot: 1}\n",
        _refused(CONFIG, "runtime.stop_timeot", "unknown key"),
    ),
    ConfigFileCase(
        "impossible-value",
        "group_config: {max_dotfiles: 1000000000000}\n",
        _refused(CONFIG, "group_config.max_dotfiles", "less than or equal to 100000"),
    ),
    ConfigFileCase(
        "inconsistent-retry",
        "group_config: {retry: {base_delay: 5, max_delay: 1}}\n",
        _refused(CONFIG, "group_config.retry", "max_delay (1) must not be below base_delay (5)"),
    ),
    ConfigFileCase(
        "inconsistent-supervisor",
        "runtime: {supervisor: {backoff_base: 1, backoff_cap: 0.1}}\n",
        _refused(CONFIG, "runtime.supervisor", "backoff_cap (0.1) must not be below"),
    ),
    ConfigFileCase(
        "plugins-allow-not-a-list",
        "plugins: {allow: {db: yes}}\n",
        _refused(CONFIG, "plugins.allow", "valid list"),
    ),
    ConfigFileCase(
        "oversized-value",
        f"group_config: {{default_domain: {'x' * 100_000}}}\n",
        _refused(CONFIG, "group_config.default_domain", "(100002 characters)", "at most 64"),
    ),
    ConfigFileCase(
        "very-long-key",
        f"db:\n  ? {'k' * 3000}\n  : 1\n",
        _refused(CONFIG, "unknown key", "(3003 characters)"),
    ),
    ConfigFileCase(
        "alias-bomb",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "db: {pool_size: *i}\n",
        _refused(CONFIG, "more than 100000 values"),
    ),
    ConfigFileCase(
        "nested-too-deeply",
        f"db: {{x: {'[' * 5000}{']' * 5000}}}\n",
        _refused(CONFIG, "nested too deeply"),
    ),
    ConfigFileCase(
        "nul-escaped-in-value",
        'group_config: {default_domain: "a\\0b"}\n',
        _refused(CONFIG, "group_config.default_domain", "'a\\x00b'", "printable"),
    ),
    ConfigFileCase(
        "escape-sequence-in-value",
        'group_config: {default_domain: "\\e[31mred"}\n',
        _refused(CONFIG, "group_config.default_domain", "\\x1b[31mred", "printable"),
    ),
    ConfigFileCase(
        "rtl-override-in-key",
        'db: {"pool\\u202esize": 5}\n',
        _refused(CONFIG, "db.pool\\u202esize", "unknown key", hides=(RTL,)),
    ),
    ConfigFileCase(
        "rtl-override-in-value",
        'group_config: {default_domain: "\\u202eniamod"}\n',
        _refused(CONFIG, "group_config.default_domain", "\\u202eniamod", hides=(RTL,)),
    ),
    ConfigFileCase(
        "lone-surrogate-key",
        'db: {"\\uD800": 1}\n',
        _refused(CONFIG, "db.'\\ud800'", "not valid Unicode"),
    ),
    ConfigFileCase(
        "lone-surrogate-value",
        'group_config: {default_domain: "\\uDC00x"}\n',
        _refused(CONFIG, "group_config.default_domain", "not valid Unicode"),
    ),
    ConfigFileCase(
        "secret-of-wrong-type",
        f"redis: {{password: [{SECRET}]}}\n",
        _refused(CONFIG, "redis.password = '***'", hides=(SECRET,)),
    ),
]

# -- environment variables ------------------------------------------------------------------

_E = "JASECI_LIKE__"

ENVIRONMENT = [
    EnvCase(
        "env-wrong-type",
        {f"{_E}DB__POOL_SIZE": "abc"},
        _refused(CONFIG, "db.pool_size = 'abc'", "env JASECI_LIKE__DB__POOL_SIZE"),
    ),
    EnvCase(
        "env-impossible-value",
        {f"{_E}DB__POOL_SIZE": "0"},
        _refused(CONFIG, "db.pool_size", "greater than or equal to 1"),
    ),
    EnvCase(
        "env-not-a-boolean",
        {f"{_E}DB__ECHO": "maybe"},
        _refused(CONFIG, "db.echo = 'maybe'", "valid boolean"),
    ),
    EnvCase(
        "env-bad-json",
        {f"{_E}GROUP_CONFIG__RETRY": '{"attempts": '},
        _refused(CONFIG, "JASECI_LIKE__GROUP_CONFIG__RETRY", "not valid JSON"),
    ),
    EnvCase(
        "env-json-nested-too-deeply",
        {f"{_E}GROUP_CONFIG__RETRY": "[" * 100_000 + "]" * 100_000},
        _refused(CONFIG, "nested too deeply", "(200002 characters)"),
    ),
    EnvCase(
        "env-json-list-for-mapping",
        {f"{_E}GROUP_CONFIG__RETRY": "[1, 2]"},
        _refused(CONFIG, "group_config.retry", "valid dictionary"),
    ),
    EnvCase(
        "env-unknown-section",
        {f"{_E}NOSUCH__KEY": "1"},
        _refused(CONFIG, "section 'nosuch'", "env JASECI_LIKE__NOSUCH__KEY"),
    ),
    EnvCase(
        "env-unknown-key",
        {f"{_E}DB__NO_SUCH_KEY": "1"},
        _refused(CONFIG, "db.no_such_key", "unknown key"),
    ),
    EnvCase(
        "env-no-key",
        {"JASECI_LIKE__DB": "1"},
        _refused(CONFIG, "JASECI_LIKE__DB:", "expected JASECI_LIKE__<SERVICE>__<KEY>"),
    ),
    EnvCase(
        "env-empty-section",
        {"JASECI_LIKE____X": "1"},
        _refused(CONFIG, "JASECI_LIKE____X", "expected"),
    ),
    EnvCase(
        "env-empty-key-part",
        {f"{_E}DB____ECHO": "true"},
        _refused(CONFIG, "JASECI_LIKE__DB____ECHO", "expected"),
    ),
    EnvCase(
        "plugins-allow-not-names",
        {f"{_E}PLUGINS__ALLOW": "[1, 2]"},
        _refused(CONFIG, "plugins.allow.0 = 1", "valid string"),
    ),
    EnvCase(
        "plugins-deny-empty-names",
        {f"{_E}PLUGINS__DENY": ",,,"},
        _refused(CONFIG, "plugins.deny", "not plugin names"),
    ),
    EnvCase(
        "plugins-deny-mapping",
        {f"{_E}PLUGINS__DENY": '{"db": true}'},
        _refused(CONFIG, "plugins.deny", "valid list"),
    ),
    EnvCase(
        "plugins-unknown-key",
        {f"{_E}PLUGINS__ALOW": "db"},
        _refused(CONFIG, "plugins.alow", "unknown key"),
    ),
    EnvCase(
        "runtime-negative-timeout",
        {f"{_E}RUNTIME__STOP_TIMEOUT": "-1"},
        _refused(CONFIG, "runtime.stop_timeout = '-1'", "greater than 0"),
    ),
    EnvCase(
        "supervisor-not-a-number",
        {f"{_E}RUNTIME__SUPERVISOR__INTERVAL": "soon"},
        _refused(CONFIG, "runtime.supervisor.interval = 'soon'", "valid number"),
    ),
    EnvCase(
        "unknown-profile",
        {"JASECI_LIKE_PROFILE": "nope"},
        _refused(CONFIG, "unknown profile 'nope'", "known:"),
    ),
    EnvCase(
        "missing-config-file",
        {"JASECI_LIKE_CONFIG": "/nonexistent/jaseci-like.yaml"},
        _refused(CONFIG, "/nonexistent/jaseci-like.yaml", "no such file"),
    ),
    EnvCase(
        "env-control-characters",
        {f"{_E}GROUP_CONFIG__DEFAULT_DOMAIN": "a\x1b[2Jb"},
        _refused(CONFIG, "'a\\x1b[2Jb'", "printable"),
    ),
    EnvCase(
        "env-oversized-value",
        {f"{_E}GROUP_CONFIG__DEFAULT_DOMAIN": "d" * 100_000},
        _refused(CONFIG, "(100002 characters)", "at most 64 characters"),
    ),
    EnvCase(
        "env-undecodable-bytes",
        {f"{_E}GROUP_CONFIG__DEFAULT_DOMAIN": "caf\udce9"},
        _refused(CONFIG, "group_config.default_domain", "unicode string"),
    ),
    EnvCase(
        "env-secret-of-wrong-type",
        {f"{_E}REDIS__PASSWORD": f'["{SECRET}"]'},
        _refused(CONFIG, "redis.password = '***'", hides=(SECRET,)),
    ),
    EnvCase(
        "env-malformed-db-url-with-password",
        {f"{_E}DB__URL": f"postgresql//admin:{SECRET}@db.example/app"},
        _refused(NOT_STARTED, "db.url", "not an SQLAlchemy URL", hides=(SECRET,)),
        args=("dotfiles", "list", GROUP),
    ),
]

# -- command lines --------------------------------------------------------------------------


def _create(path: str, *more: str) -> tuple[str, ...]:
    return ("dotfiles", "create", GROUP, path, *(more or ("--data", "x")))


COMMAND_LINES = [
    # config keys and values
    CliCase("config-get-no-dot", ("config", "get", "nodot"), _refused(CONFIG, "SERVICE.KEY")),
    CliCase(
        "config-get-empty-part", ("config", "get", "redis..port"), _refused(CONFIG, "SERVICE.KEY")
    ),
    CliCase(
        "config-get-unknown-service",
        ("config", "get", "nosuch.key"),
        _refused(CONFIG, "unknown config name 'nosuch'"),
    ),
    CliCase(
        "config-get-unknown-key",
        ("config", "get", "group_config.nope"),
        _refused(CONFIG, "'group_config.nope': no such key"),
    ),
    CliCase(
        "config-get-rtl-key",
        ("config", "get", f"group_config.max{RTL}dotfiles"),
        _refused(CONFIG, "max\\u202edotfiles", "printable", hides=(RTL,)),
    ),
    CliCase(
        "config-set-wrong-type",
        ("config", "set", "group_config.max_dotfiles", "many"),
        _refused(CONFIG, "group_config.max_dotfiles = 'many'", "from config_set"),
    ),
    CliCase(
        "config-set-negative",
        ("config", "set", "--", "group_config.max_dotfiles", "-5"),
        _refused(CONFIG, "group_config.max_dotfiles", "greater than or equal to 1"),
    ),
    CliCase(
        "config-set-huge-number",
        ("config", "set", "group_config.max_dotfiles", "9" * 40),
        _refused(CONFIG, "group_config.max_dotfiles", "less than or equal to 100000"),
    ),
    CliCase(
        "config-set-bad-json",
        ("config", "set", "group_config.retry", '{"attempts": 1'),
        _refused(CONFIG, "group_config.retry", "not valid JSON"),
    ),
    CliCase(
        "config-set-json-nested-too-deeply",
        ("config", "set", "group_config.retry", "{" + '"a": ' + "[" * 50_000 + "]" * 50_000 + "}"),
        _refused(CONFIG, "group_config.retry", "nested too deeply"),
    ),
    CliCase(
        "config-set-oversized-value",
        ("config", "set", "group_config.default_domain", "d" * 100_000),
        _refused(CONFIG, "group_config.default_domain", "(100002 characters)"),
    ),
    CliCase(
        "config-set-list-for-mapping",
        ("config", "set", "group_config.retry", "[1, 2]"),
        _refused(CONFIG, "group_config.retry", "valid dictionary"),
    ),
    CliCase(
        "config-set-unknown-key",
        ("config", "set", "group_config.colour", "red"),
        _refused(CONFIG, "group_config.colour", "unknown key"),
    ),
    CliCase(
        "config-set-store-service",
        ("config", "set", "db.pool_size", "3"),
        _refused(CONFIG, "cannot be stored", "JASECI_LIKE__DB__"),
    ),
    CliCase(
        "config-set-inconsistent",
        ("config", "set", "group_config.retry", '{"base_delay": 5, "max_delay": 1}'),
        _refused(CONFIG, "(from config_set)", "must not be below base_delay"),
    ),
    CliCase(
        "config-set-control-characters",
        ("config", "set", "group_config.default_domain", "evil\x1b]0;title\x07"),
        _refused(CONFIG, "group_config.default_domain", "printable"),
    ),
    CliCase(
        "config-set-sql-looking-domain",
        ("config", "set", "group_config.default_domain", "x'/**/OR/**/1=1"),
        _refused(CONFIG, "group_config.default_domain", "without '/'"),
    ),
    CliCase(
        "config-refresh-unknown",
        ("config", "refresh", "nosuch"),
        _refused(CONFIG, "unknown config name 'nosuch'"),
    ),
    # commands and options
    CliCase("unknown-command", ("frobnicate",), _refused(USAGE, "No such command 'frobnicate'")),
    CliCase("unknown-option", ("config", "show", "--bogus"), _refused(USAGE, "No such option")),
    CliCase("missing-argument", ("config", "get"), _refused(USAGE, "Missing argument 'KEY'")),
    CliCase(
        "bad-choice",
        ("--log-level", "loud", "config", "show"),
        _refused(USAGE, "'loud' is not one of"),
    ),
    CliCase(
        "out-of-range-option",
        ("dotfiles", "list", GROUP, "--limit", "0"),
        _refused(USAGE, "0 is not in the range"),
    ),
    CliCase(
        "offset-past-64-bits",
        ("dotfiles", "list", GROUP, "--offset", "9" * 20),
        _refused(INVALID, "offset 99999999999999999999", "at most"),
    ),
    CliCase(
        "bad-role",
        ("users", "create", "ada@example.org", "--role", "king"),
        _refused(USAGE, "'king' is not one of"),
    ),
    CliCase(
        "unknown-profile-option",
        ("config", "show", "--profile", "nope"),
        _refused(CONFIG, "unknown profile 'nope'"),
    ),
    # dotfile paths
    CliCase("path-dotdot", _create("../escape"), _refused(INVALID, "'../escape'", "'..'")),
    CliCase(
        "path-dotdot-inside",
        _create(".local2/../.ssh"),
        _refused(INVALID, "'.local2/../.ssh'", "'..'"),
    ),
    CliCase("path-leading-slash", _create("/etc/passwd"), _refused(INVALID, "relative")),
    CliCase(
        "path-reserved-authorized-keys",
        _create(".ssh/authorized_keys"),
        _refused(INVALID, "'.ssh/authorized_keys' is reserved"),
    ),
    CliCase("path-reserved-ssh", _create(".ssh"), _refused(INVALID, "'.ssh' is reserved")),
    CliCase("path-dot-component", _create("./.ssh"), _refused(INVALID, "'.'")),
    CliCase("path-empty-component", _create("a//b"), _refused(INVALID, "empty")),
    CliCase("path-empty", _create(""), _refused(INVALID, "non-empty")),
    CliCase(
        "path-control-character",
        _create("a\x01b"),
        _refused(INVALID, "'a\\x01b'", "control characters"),
    ),
    CliCase("path-tab", _create("a\tb"), _refused(INVALID, "control characters")),
    CliCase(
        "path-escape-sequence",
        _create("\x1b[2J.rc"),
        _refused(INVALID, "'\\x1b[2J.rc'", "control characters"),
    ),
    CliCase(
        "path-256-bytes", _create("." + "a" * 255), _refused(INVALID, "path of 256 bytes", "255")
    ),
    CliCase(
        "path-256-bytes-multibyte", _create("\u00e9" * 128), _refused(INVALID, "path of 256 bytes")
    ),
    CliCase(
        "path-not-utf8-argument",
        ("dotfiles", "get", GROUP, "caf\udce9"),
        _refused(INVALID, "path 'caf\\udce9'", "not valid Unicode"),
    ),
    CliCase(
        "path-not-utf8-argument-process",
        ("dotfiles", "delete", GROUP, ".x\udcff"),
        _refused(INVALID, "not valid Unicode"),
        subprocess=True,
    ),
    # permissions and data
    CliCase(
        "perm-not-octal",
        _create(".p1", "--data", "x", "--perm", "888"),
        _refused(INVALID, "permission '888'", "three octal digits"),
    ),
    CliCase(
        "perm-four-digits",
        _create(".p2", "--data", "x", "--perm", "0644"),
        _refused(INVALID, "permission '0644'"),
    ),
    CliCase(
        "perm-symbolic",
        ("dotfiles", "update", GROUP, ".bashrc", "--perm", "rw-r--r--"),
        _refused(INVALID, "permission 'rw-r--r--'"),
    ),
    CliCase(
        "update-nothing",
        ("dotfiles", "update", GROUP, ".bashrc"),
        _refused(INVALID, "nothing to change"),
    ),
    CliCase(
        "data-nul-from-file",
        _create(".nul", "--file", "{nul.txt}"),
        _refused(INVALID, "NUL"),
        files={"nul.txt": b"before\x00after"},
    ),
    CliCase(
        "data-file-not-utf8",
        _create(".latin1", "--file", "{latin1.txt}"),
        _refused(USAGE, "--file", "not UTF-8 text"),
        files={"latin1.txt": b"caf\xe9\n"},
    ),
    CliCase(
        "data-file-missing",
        _create(".missing", "--file", "/nonexistent/data.txt"),
        _refused(USAGE, "/nonexistent/data.txt", "No such file"),
    ),
    CliCase(
        "data-file-missing-process",
        _create(".missing", "--file", "/nonexistent/data.txt"),
        _refused(USAGE, "No such file"),
        subprocess=True,
    ),
    CliCase(
        "data-file-endless",
        _create(".zero", "--file", "/dev/zero"),
        _refused(USAGE, "/dev/zero", "more than 67108864 characters"),
    ),
    CliCase(
        "config-file-endless",
        ("config", "show", "--config", "/dev/zero"),
        _refused(CONFIG, "/dev/zero", "more than 1048576 characters"),
    ),
    CliCase(
        "data-file-is-directory",
        _create(".dir", "--file", "/"),
        _refused(USAGE, "--file", "directory"),
    ),
    CliCase(
        "data-and-file",
        _create(".both", "--data", "x", "--file", "{x.txt}"),
        _refused(USAGE, "not both"),
        files={"x.txt": b"x"},
    ),
    CliCase("data-missing", _create(".none", "--perm", "600"), _refused(USAGE, "give the content")),
    CliCase("duplicate-path", _create(".bashrc"), _refused(EXISTS, "'.bashrc' already exists")),
    # groups, domains, users named
    CliCase(
        "unknown-group", ("dotfiles", "list", "nosuch"), _refused(NOT_FOUND, "no group 'nosuch'")
    ),
    CliCase(
        "unknown-domain",
        ("dotfiles", "list", GROUP, "--domain", "nowhere"),
        _refused(NOT_FOUND, "'nowhere'"),
    ),
    CliCase(
        "unknown-acting-user",
        ("dotfiles", "list", GROUP, "--as", "nobody@example.org"),
        _refused(NOT_FOUND, "no user nobody@example.org"),
    ),
    CliCase(
        "group-not-utf8",
        ("dotfiles", "list", "r\udce9search"),
        _refused(INVALID, "group 'r\\udce9search'", "not valid Unicode"),
    ),
    CliCase("group-name-slash", ("groups", "create", "a/b"), _refused(INVALID, "'/'")),
    CliCase(
        "group-name-uuid",
        ("groups", "create", "00000000-0000-0000-0000-000000000000"),
        _refused(INVALID, "must not look like a UUID"),
    ),
    CliCase("group-name-too-long", ("groups", "create", "g" * 65), _refused(INVALID, "1 to 64")),
    CliCase(
        "group-name-newline",
        ("groups", "create", "two\nlines"),
        _refused(INVALID, "no control characters"),
    ),
    CliCase(
        "user-email-invalid",
        ("users", "create", "not-an-email"),
        _refused(INVALID, "email 'not-an-email'"),
    ),
    # injection-looking text: refused where invalid, else taken literally
    CliCase(
        "sql-looking-group",
        ("dotfiles", "list", f"{GROUP}' OR '1'='1"),
        _refused(NOT_FOUND, "no group \"research' OR '1'='1\""),
    ),
    CliCase(
        "sql-looking-path-stored",
        _create("'; DROP TABLE gc_dotfiles; --", "--data", "x' OR '1'='1"),
        Stored("'; DROP TABLE gc_dotfiles; --", "x' OR '1'='1"),
    ),
    CliCase(
        "sql-looking-data-stored",
        _create(".students", "--data", "Robert'); DROP TABLE students;--"),
        Stored(".students", "Robert'); DROP TABLE students;--"),
    ),
    CliCase(
        "like-wildcards-stored",
        _create("%_\\[x]", "--data", "%"),
        Stored("%_\\[x]", "%"),
    ),
    CliCase(
        "shell-looking-data-stored",
        _create(".evil", "--data", "$(rm -rf /); `id`; ${HOME}"),
        Stored(".evil", "$(rm -rf /); `id`; ${HOME}"),
    ),
    CliCase(
        "like-wildcard-prefix-literal",
        ("dotfiles", "list", GROUP, "--prefix", "%b"),
        Answered(("0 of 0 dotfile(s)",)),
    ),
    CliCase(
        "like-underscore-prefix-literal",
        ("dotfiles", "list", GROUP, "--prefix", "_bashrc"),
        Answered(("0 of 0 dotfile(s)",)),
    ),
    # a few through the real console script
    CliCase(
        "config-file-syntax-error-process",
        ("config", "show", "--config", "{bad.yaml}"),
        _refused(CONFIG, "bad.yaml", "YAML syntax error"),
        files={"bad.yaml": b"db:\n  pool_size: [\n"},
        subprocess=True,
    ),
    CliCase(
        "path-dotdot-process",
        _create("../../etc/shadow"),
        _refused(INVALID, "'..'"),
        subprocess=True,
    ),
    CliCase(
        "unknown-command-process",
        ("dotfile", "list"),
        _refused(USAGE, "No such command 'dotfile'"),
        subprocess=True,
    ),
]

# -- kubernetes manifests -------------------------------------------------------------------

_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: %s
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
"""
_CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: b}\n"
_INVALID = "kube_manifest_invalid"

MANIFESTS = [
    KubeCase(
        "schema-wrong-type",
        _DEPLOYMENT % '"two"',
        _refused(_INVALID, "Deployment/web", "spec.replicas", "'two' is not of type"),
    ),
    KubeCase(
        "schema-unknown-field",
        _CONFIGMAP + "colour: red\n",
        _refused(_INVALID, "ConfigMap/web", "colour"),
    ),
    KubeCase(
        "schema-unknown-nested-field",
        (_DEPLOYMENT % "1").replace("replicas:", "replicaz:"),
        _refused(_INVALID, "replicaz"),
    ),
    KubeCase(
        "not-a-mapping",
        "- apiVersion: v1\n  kind: ConfigMap\n",
        _refused(_INVALID, "document 1 is not a manifest with a 'kind'"),
    ),
    KubeCase(
        "a-scalar-document",
        _CONFIGMAP + "---\njust text\n",
        _refused(_INVALID, "document 2 is not a manifest"),
    ),
    KubeCase(
        "missing-kind",
        "apiVersion: v1\nmetadata: {name: web}\n",
        _refused(_INVALID, "not a manifest with a 'kind'"),
    ),
    KubeCase(
        "kind-not-text",
        "apiVersion: v1\nkind: 5\nmetadata: {name: web}\n",
        _refused(_INVALID, "not a manifest with a 'kind'"),
    ),
    KubeCase(
        "missing-api-version",
        "kind: ConfigMap\nmetadata: {name: web}\n",
        _refused(_INVALID, "apiVersion: required"),
    ),
    KubeCase(
        "missing-name",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n",
        _refused(_INVALID, "metadata.name: required"),
    ),
    KubeCase(
        "duplicate-object",
        _CONFIGMAP + "---\n" + _CONFIGMAP,
        _refused(_INVALID, "ConfigMap/web", "is also defined"),
    ),
    KubeCase(
        "unknown-kind",
        "apiVersion: v1\nkind: Frobnicator\nmetadata: {name: web}\n",
        _refused(_INVALID, "no Kubernetes", "'Frobnicator'"),
    ),
    KubeCase(
        "yaml-syntax-error",
        "apiVersion: v1\nkind: [ConfigMap\n",
        _refused(_INVALID, "YAML syntax error"),
    ),
    KubeCase(
        "secret-value-not-echoed",
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: web}}\ndata: {{password: [{SECRET}]}}\n",
        _refused(_INVALID, "Secret/web", "data.password", hides=(SECRET,)),
    ),
    KubeCase(
        "bad-namespace-setting",
        _CONFIGMAP,
        _refused("config_error", "kube.namespace = 'Not A Label'", "DNS label"),
        settings={"JASECI_LIKE__KUBE__NAMESPACE": "Not A Label"},
    ),
]

# -- plugin registrations -------------------------------------------------------------------

_BROKEN = "broken"

PLUGINS = [
    PluginCase("broken-import", "broken_import", _refused(_BROKEN, "jl_no_such_module_anywhere")),
    PluginCase(
        "hook-raises", "broken_hook", _refused(_BROKEN, "the services hook of broken_hook exploded")
    ),
    PluginCase(
        "not-a-service-class", "broken_class", _refused(_BROKEN, "not a CommonService subclass")
    ),
    PluginCase("misspelt-hook", "broken_typo", _refused(_BROKEN, "jaseci_like_service")),
    PluginCase("unknown-hook-argument", "broken_args", _refused(_BROKEN, "command_group")),
    PluginCase("bad-service-name", "bad_name", _refused(_BROKEN, "'Bad-Name'", "must match")),
    PluginCase(
        "schema-not-service-config",
        "bad_schema",
        _refused(_BROKEN, "config_schema must subclass ServiceConfig"),
    ),
    PluginCase(
        "defaults-refused-by-own-schema",
        "bad_defaults",
        _refused(_BROKEN, "bad_defaults.enabled = 'sometimes'", "valid boolean"),
    ),
    PluginCase("hook-returns-a-number", "not_a_list", _refused(_BROKEN, "'int' object")),
    PluginCase(
        "second-service-named-db",
        "second_db",
        _refused(_BROKEN, "service 'db' is already provided"),
    ),
    PluginCase(
        "task-not-callable", "bad_task", _refused(_BROKEN, "'not_callable' is not callable")
    ),
    PluginCase("syntax-error", "syntax_error", _refused(_BROKEN, "SyntaxError")),
    PluginCase(
        "raises-on-import",
        "raises_on_import",
        _refused(_BROKEN, "raises_on_import refuses to be imported"),
    ),
]

# -- the HTTP API ---------------------------------------------------------------------------

_DOTFILES = f"/v1/groups/{GROUP}/dotfiles"
_JSON = "validation_error"
_PATH = "invalid_dotfile_path"
_QUERY = "invalid_query"

API = [
    ApiCase(
        "malformed-json",
        "PUT",
        f"{_DOTFILES}/.x",
        _http(422, _JSON, "JSON decode error"),
        body=b'{"data": ',
    ),
    ApiCase(
        "wrong-type",
        "PUT",
        f"{_DOTFILES}/.x",
        _http(422, _JSON, "body.data", "valid string"),
        json={"data": 5},
    ),
    ApiCase(
        "unknown-field",
        "PUT",
        f"{_DOTFILES}/.x",
        _http(422, _JSON, "body.colour", "Extra inputs"),
        json={"data": "x", "colour": "red"},
    ),
    ApiCase(
        "not-an-object",
        "PUT",
        f"{_DOTFILES}/.x",
        _http(422, _JSON, "valid dictionary"),
        json=["data", "x"],
    ),
    ApiCase(
        "bad-permission",
        "PUT",
        f"{_DOTFILES}/.x",
        _http(422, _JSON, "body.permission"),
        json={"data": "x", "permission": "888"},
    ),
    ApiCase(
        "empty-update",
        "PATCH",
        f"{_DOTFILES}/.bashrc",
        _http(422, _JSON, "nothing to change"),
        json={},
    ),
    ApiCase(
        "oversized-body",
        "PUT",
        f"{_DOTFILES}/.big",
        _http(413, "payload_too_large", "api.max_body_bytes"),
        json={"data": "a" * (2 << 20)},
    ),
    ApiCase(
        "deeply-nested-body",
        "PUT",
        f"{_DOTFILES}/.deep",
        _http(400, "bad_request", "parsing the body"),
        body=b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ),
    ApiCase(
        "lone-surrogate-in-body",
        "PUT",
        f"{_DOTFILES}/.s",
        _http(422, _JSON, "body.data", "lone surrogates"),
        body=b'{"data": "\\ud800"}',
    ),
    ApiCase(
        "nul-in-body",
        "PUT",
        f"{_DOTFILES}/.n",
        _http(422, "invalid_dotfile_data", "NUL"),
        body=b'{"data": "a\\u0000b"}',
    ),
    ApiCase(
        "path-dotdot-encoded",
        "PUT",
        f"{_DOTFILES}/%2e%2e/escape",
        _http(422, "invalid_dotfile_path", "'../escape'"),
        json={"data": "x"},
    ),
    ApiCase(
        "path-leading-slash",
        "PUT",
        f"{_DOTFILES}//etc/passwd",
        _http(422, "invalid_dotfile_path", "relative"),
        json={"data": "x"},
    ),
    ApiCase(
        "path-reserved",
        "PUT",
        f"{_DOTFILES}/.ssh/authorized_keys",
        _http(422, "invalid_dotfile_path", "reserved"),
        json={"data": "x"},
    ),
    ApiCase(
        "path-control-character",
        "PUT",
        f"{_DOTFILES}/a%01b",
        _http(422, _PATH, "'a\\x01b'", "control characters"),
        json={"data": "x"},
    ),
    ApiCase(
        "path-256-bytes",
        "PUT",
        f"{_DOTFILES}/{'%C3%A9' * 128}",
        _http(422, "invalid_dotfile_path", "256 bytes"),
        json={"data": "x"},
    ),
    ApiCase(
        "path-not-utf8",
        "GET",
        f"{_DOTFILES}/%ff%fe",
        _http(422, _PATH, "not UTF-8 text"),
    ),
    ApiCase(
        "group-nul",
        "GET",
        "/v1/groups/%00/dotfiles",
        _http(422, _JSON, "path.group: must not contain control characters"),
    ),
    ApiCase(
        "group-trailing-newline",
        "GET",
        f"/v1/groups/{GROUP}%0A/dotfiles/.bashrc",
        _http(422, _JSON, "path.group: must not contain control characters"),
    ),
    ApiCase(
        "group-not-utf8",
        "GET",
        "/v1/groups/%FF/dotfiles",
        _http(422, _JSON, "path.group: must be UTF-8 text"),
    ),
    ApiCase(
        "member-not-utf8",
        "PUT",
        f"/v1/groups/{GROUP}/members/%C3%28",
        _http(422, _JSON, "path.member: must be UTF-8 text"),
    ),
    ApiCase(
        "listing-trailing-newline",
        "GET",
        f"{_DOTFILES}%0A",
        _http(404, "not_found", "Not Found"),
    ),
    ApiCase(
        "create-group-trailing-newline",
        "PUT",
        "/v1/groups%0A",
        _http(404, "not_found", "Not Found"),
        json={"name": "newline"},
    ),
    ApiCase(
        "group-sql-looking",
        "GET",
        "/v1/groups/research'%20OR%20'1'='1/dotfiles",
        _http(404, "group_not_found", "no group \"research' OR '1'='1\""),
    ),
    ApiCase(
        "domain-too-long",
        "GET",
        f"{_DOTFILES}?domain={'d' * 65}",
        _http(422, _JSON, "query.domain"),
    ),
    ApiCase("limit-zero", "GET", f"{_DOTFILES}?limit=0", _http(400, _QUERY, "query.limit")),
    ApiCase(
        "search-unknown-field",
        "POST",
        f"{_DOTFILES}/search",
        _http(422, _JSON, "body.colour"),
        json={"colour": "red"},
    ),
    ApiCase("no-key", "GET", _DOTFILES, _http(401, "unauthorized", "no API key"), auth="none"),
    ApiCase("unknown-key", "GET", _DOTFILES, _http(401, "unauthorized", "not valid"), auth="bad"),
    ApiCase("unknown-route", "GET", "/v1/nope", _http(404, "not_found", "Not Found")),
    ApiCase(
        "wrong-method",
        "POST",
        f"{_DOTFILES}/.bashrc",
        _http(405, "method_not_allowed", "Method Not Allowed"),
        json={},
    ),
    ApiCase(
        "sql-looking-path-stored",
        "PUT",
        f"{_DOTFILES}/x'%3B%20DELETE%20FROM%20gc_dotfiles%3B%20--",
        Stored("x'; DELETE FROM gc_dotfiles; --", "1' UNION SELECT key_hash FROM api_keys --"),
        json={"data": "1' UNION SELECT key_hash FROM api_keys --"},
    ),
]


# -- URL paths: every control character at the start, middle and end; escapes not UTF-8 ----

_METHODS = ("PUT", "GET", "PATCH", "DELETE")
_BODIES: Mapping[str, Any] = {"PUT": {"data": "x"}, "PATCH": {"data": "x"}}
#: C0, DEL and C1: the characters a path may not hold.
CONTROL_CHARACTERS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]


def _escaped(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


def _control_character_cases() -> list[ApiCase]:
    """Each character at three places; ``.bashrc`` exists, so a character dropped at
    the end would act on it (GET answers it, DELETE removes it...)."""
    cases = []
    for n, ch in enumerate(CONTROL_CHARACTERS):
        code, e = f"U+{ord(ch):04X}", _escaped(ch)
        places = (("start", f"{e}.rc"), ("middle", f".a{e}b"), ("end", f".bashrc{e}"))
        for m, (where, path) in enumerate(places):
            method = _METHODS[(n + m) % len(_METHODS)]
            expect = Refused(_PATH, ("control characters", code), status=422, hides=(ch,))
            url = f"{_DOTFILES}/{path}"
            body = _BODIES.get(method)
            cases.append(ApiCase(f"path-{where}-{code}", method, url, expect, json=body))
    return cases


#: Percent-escapes that spell no UTF-8 character: decoded to U+FFFD they would make
#: different byte strings one path.
NOT_UTF8 = {
    "ff": "%FF",
    "fe-lowercase": "%fe",
    "c3-28": "%C3%28",
    "overlong-slash": "%C0%AF",
    "overlong-dot": "%C0%AE%C0%AE",
    "surrogate-d800": "%ED%A0%80",
    "above-10ffff": "%F4%90%80%80",
    "truncated-euro": "%E2%82",
    "lone-continuation": "%80",
    "five-byte-form": "%F8%88%80%80%80",
    "latin1-e-acute": "caf%E9",
    "valid-then-invalid": "%C3%A9%FF",
}


def _not_utf8_cases() -> list[ApiCase]:
    cases = []
    for n, (name, escape) in enumerate(NOT_UTF8.items()):
        for m, path in enumerate((escape, f".bashrc{escape}", f".a/{escape}/b")):
            method = _METHODS[(n + m) % len(_METHODS)]
            cases.append(
                ApiCase(
                    f"path-not-utf8-{name}-{m}",
                    method,
                    f"{_DOTFILES}/{path}",
                    _http(422, _PATH, "not UTF-8 text"),
                    json=_BODIES.get(method),
                )
            )
    return cases


# -- pagination: crafted cursors, page parameters of the wrong type ---------------------------


def _token(doc: Any) -> str:
    """A cursor-looking token: ``doc`` as JSON (``bytes``: as they are), base64url."""
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fingerprint(*columns: Any) -> str:
    """The ordering mark of the cursors the dotfile search issues (taken from a real one)."""
    real = encode_cursor([Order(c) for c in columns], [None] * len(columns))
    mark: str = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))["o"]
    return mark


#: ``order: path`` pages by (path, id); ``order: created`` by id.
_BY_PATH = _fingerprint(dotfiles.c.path, dotfiles.c.id)
_BY_CREATED = _fingerprint(dotfiles.c.id)
_DATE = "2024-01-01T00:00:00+00:00"


def _keys(path: Any, id_: Any) -> str:
    return _token({"o": _BY_PATH, "v": [path, id_]})


#: A well-formed cursor (a page after ".a"): the crafted ones differ from it in one thing.
GOOD_CURSOR = _keys(["j", ".a"], ["j", 1])
CRAFTED_CURSORS = {
    "not-base64": "!!!not*base64!!!",
    "empty": "",
    "overlong": "A" * 5000,
    "non-ascii": "\u00e9t\u00e9",
    "control-character": "eyJ\x01",
    "one-character": "e",
    "base64-of-text": _token(b"hello, cursor"),
    "base64-of-binary": _token(b"\xff\xfe\x00\x01"),
    "json-list": _token([_BY_PATH, [["j", ".a"], ["j", 1]]]),
    "json-string": _token("cursor"),
    "json-number": _token(5),
    "json-null": _token(None),
    "json-huge-number": _token(b"1" * 5000),
    "json-deep-nesting": _token(b"[" * 100_000 + b"]" * 100_000),
    "no-values": _token({"o": _BY_PATH}),
    "no-ordering": _token({"v": [["j", ".a"], ["j", 1]]}),
    "values-a-number": _token({"o": _BY_PATH, "v": 5}),
    "values-a-string": _token({"o": _BY_PATH, "v": "j1"}),
    "values-an-object": _token({"o": _BY_PATH, "v": {"j": ".a", "u": 1}}),
    "values-empty": _token({"o": _BY_PATH, "v": []}),
    "values-too-many": _token({"o": _BY_PATH, "v": [["j", ".a"], ["j", 1], ["j", 2]]}),
    "value-not-a-pair": _keys(["j"], ["j", 1]),
    "value-a-string": _keys("j.a", ["j", 1]),
    "value-unknown-tag": _keys(["x", ".a"], ["j", 1]),
    "ordering-a-list": _token({"o": [_BY_PATH], "v": [["j", ".a"], ["j", 1]]}),
    "another-ordering": _token({"o": _BY_CREATED, "v": [["j", 1]]}),
    "path-a-number": _keys(["j", 5], ["j", 1]),
    "path-null": _keys(["j", None], ["j", 1]),
    "path-a-list": _keys(["j", [".a"]], ["j", 1]),
    "path-with-nul": _keys(["j", ".a\x00b"], ["j", 1]),
    "path-lone-surrogate": _keys(["j", "\ud800"], ["j", 1]),
    "id-text": _keys(["j", ".a"], ["j", "1"]),
    "id-boolean": _keys(["j", ".a"], ["j", True]),
    "id-float": _keys(["j", ".a"], ["j", 1.5]),
    "id-huge": _keys(["j", ".a"], ["j", 10**30]),
    "id-huge-negative": _keys(["j", ".a"], ["j", -(10**30)]),
    "id-nan": _keys(["j", ".a"], ["j", float("nan")]),
    "id-infinity": _keys(["j", ".a"], ["j", float("inf")]),
    "id-a-list": _keys(["j", ".a"], ["j", [1, 2]]),
    "id-an-object": _keys(["j", ".a"], ["j", {"id": 1}]),
    "id-null": _keys(["j", ".a"], ["j", None]),
    "id-a-date": _keys(["j", ".a"], ["t", _DATE]),
    "id-a-uuid": _keys(["j", ".a"], ["u", "00000000-0000-0000-0000-000000000000"]),
    "date-not-a-date": _keys(["j", ".a"], ["t", "yesterday"]),
    "date-a-number": _keys(["j", ".a"], ["t", 20240101]),
    "uuid-not-a-uuid": _keys(["j", ".a"], ["u", "not-a-uuid"]),
    "created-order-a-date": _token({"o": _BY_CREATED, "v": [["t", _DATE]]}),
}


def _cursor_cases() -> list[ApiCase]:
    cases = [
        ApiCase(
            "cursor-well-formed-accepted",
            "POST",
            f"{_DOTFILES}/search",
            Answered((".bashrc",)),
            json={"order": "path", "page": {"by": "cursor", "after": GOOD_CURSOR}},
        )
    ]
    for n, (name, token) in enumerate(CRAFTED_CURSORS.items()):
        order = "created" if name.startswith("created-") else "path"
        way = ("after", "before")[n % 2]
        cases.append(
            ApiCase(
                f"cursor-{name}",
                "POST",
                f"{_DOTFILES}/search",
                _http(400, _QUERY, "cursor" if name not in ("empty", "overlong") else "page"),
                json={"order": order, "page": {"by": "cursor", way: token}},
            )
        )
    return cases


#: ``?limit=...&offset=...`` a listing refuses, and what the message names.
PAGE_QUERIES = {
    "limit-text": ("limit=ten", "query.limit"),
    "limit-empty": ("limit=", "query.limit"),
    "limit-negative": ("limit=-1", "query.limit"),
    "limit-huge": ("limit=99999999999999999999999999", "query.limit"),
    "limit-float": ("limit=1.5", "query.limit"),
    "limit-exponent": ("limit=1e3", "query.limit"),
    "limit-boolean": ("limit=true", "query.limit"),
    "limit-hex": ("limit=0x10", "query.limit"),
    "limit-nul": ("limit=5%00", "query.limit"),
    "limit-repeated": ("limit=5&limit=6", "limit is given 2 times"),
    "offset-text": ("offset=first", "query.offset"),
    "offset-negative": ("offset=-5", "query.offset"),
    "offset-huge": ("offset=1000000000000000000000", "query.offset"),
    "offset-float": ("offset=2.5", "query.offset"),
    "offset-repeated": ("offset=0&offset=0", "offset is given 2 times"),
    "both-wrong": ("limit=x&offset=y", "query.offset"),
}
_LISTINGS = (_DOTFILES, "/v1/groups", "/v1/users", f"/v1/groups/{GROUP}/members")


def _page_query_cases() -> list[ApiCase]:
    return [
        ApiCase(
            f"page-{name}-{n % len(_LISTINGS)}",
            "GET",
            f"{_LISTINGS[n % len(_LISTINGS)]}?{query}",
            _http(400, _QUERY, says),
        )
        for n, (name, (query, says)) in enumerate(PAGE_QUERIES.items())
    ]


#: ``page`` of a search body that is refused, and what the message names.
PAGE_BODIES: dict[str, tuple[Any, str]] = {
    "limit-text": ({"limit": "ten"}, "page.offset.limit"),
    "limit-numeric-text": ({"limit": "5"}, "page.offset.limit"),
    "limit-negative": ({"limit": -1}, "page.offset.limit"),
    "limit-float": ({"limit": 1.5}, "page.offset.limit"),
    "limit-whole-float": ({"limit": 5.0}, "page.offset.limit"),
    "limit-boolean": ({"limit": True}, "page.offset.limit"),
    "limit-null": ({"limit": None}, "page.offset.limit"),
    "limit-list": ({"limit": [5]}, "page.offset.limit"),
    "limit-huge": ({"limit": 10**30}, "page.offset.limit"),
    "offset-huge": ({"offset": 10**30}, "page.offset.offset"),
    "offset-negative": ({"offset": -1}, "page.offset.offset"),
    "unknown-field": ({"colour": "red"}, "page.offset.colour"),
    "unknown-kind": ({"by": "sideways"}, "'by': 'offset'"),
    "kind-a-number": ({"by": 1}, "'by': 'offset'"),
    "not-an-object": ("page two", "'by': 'offset'"),
    "a-list": ([{"limit": 5}], "'by': 'offset'"),
    "cursor-limit-zero": ({"by": "cursor", "limit": 0}, "page.cursor.limit"),
    "cursor-both-ways": ({"by": "cursor", "after": "a", "before": "b"}, "not both"),
    "cursor-a-number": ({"by": "cursor", "after": 5}, "page.cursor.after"),
    "cursor-a-list": ({"by": "cursor", "before": ["a"]}, "page.cursor.before"),
    "cursor-with-offset": ({"by": "cursor", "offset": 5}, "page.cursor.offset"),
    "cursor-control-character": (
        {"by": "cursor", "after": "eyJ\x1b[2J"},
        "page.cursor.after: must not contain control characters",
    ),
}


def _page_body_cases() -> list[ApiCase]:
    return [
        ApiCase(
            f"search-page-{name}",
            "POST",
            f"{_DOTFILES}/search",
            _http(400, _QUERY, says),
            json={"page": page},
        )
        for name, (page, says) in PAGE_BODIES.items()
    ]


API += [
    *_control_character_cases(),
    *_not_utf8_cases(),
    *_cursor_cases(),
    *_page_query_cases(),
    *_page_body_cases(),
]

CASES: list[Case] = [*CONFIG_FILES, *ENVIRONMENT, *COMMAND_LINES, *MANIFESTS, *PLUGINS, *API]
