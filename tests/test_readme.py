"""The README runs as written: every code block, and every command of its tables.

- ``python`` blocks run, each as a script of its own, in a scratch directory with a
  fresh data directory, and must exit 0;
- ``yaml`` blocks are config files a runtime accepts;
- ``toml`` blocks parse, and name the entry-point group the project uses;
- ``text`` blocks are not run (the layout);
- ``sh`` blocks: "Run it" is run as written in a copy of the repository (a new
  virtualenv, ``pip install .``, ``jaseci-like up`` until it is ready, then Ctrl-C);
  the test command is the one CI runs (it is what runs this test);
- every ``jaseci-like ...`` command of the command table exists, with the options
  it shows.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from jaseci_like import MetaService, Runtime
from jaseci_like.cli.main import cli
from tests.plugin_fixtures import ANSWER_TIMEOUT, Served

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: How long "Run it" may take to install the project into a new virtualenv.
INSTALL_TIMEOUT = 600.0


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


def blocks() -> list[Block]:
    found: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    start: int | None = None
    lang = ""
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            if start is None:
                start, lang = number, line[3:].strip()
            else:
                found.append(Block(lang, "\n".join(lines[start : number - 1]) + "\n", start))
                start = None
    assert start is None, f"README.md:{start}: a code block is never closed"
    return found


def of(lang: str) -> list[Block]:
    return [b for b in blocks() if b.lang == lang]


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env.pop("PYTHONPATH", None)
    return env


def test_every_block_has_a_language_this_test_knows() -> None:
    langs = {b.lang for b in blocks()}
    assert langs <= {"python", "yaml", "toml", "sh", "text"}, langs


@pytest.mark.parametrize("block", of("python"), ids=str)
def test_python_blocks_run(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=ANSWER_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{block} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, f"{block}:\n{done.stderr}"


@pytest.mark.parametrize("block", of("yaml"), ids=str)
def test_yaml_blocks_are_config_files_a_runtime_takes(block: Block, tmp_path: Path) -> None:
    config = tmp_path / "app.yaml"
    config.write_text(block.text, encoding="utf-8")
    runtime = Runtime(config_file=config, environ={}, meta=MetaService.isolated())
    sections = runtime.layers.file.section_names() if runtime.layers.file else []
    assert sections, f"{block}: no section"
    for section in sections:
        if section in runtime.meta.service_names():
            resolved = runtime.meta.builder(section).resolve_config(runtime.hook)
            assert any(origin.startswith("file ") for _, _, origin in resolved.leaves()), section


@pytest.mark.parametrize("block", of("toml"), ids=str)
def test_toml_blocks_parse_and_use_our_entry_point_group(block: Block) -> None:
    doc = tomllib.loads(block.text)
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    for group in doc.get("project", {}).get("entry-points", {}):
        assert group in ours, f"{block}: entry-point group {group!r} is not the project's"


def sh_lines() -> list[str]:
    return [line for b in of("sh") for line in b.text.splitlines() if line.strip()]


#: sh lines another test runs as written, in a place this one cannot (a fresh
#: virtualenv of its own): the line, the test file that runs it, and how it does.
RUN_ELSEWHERE = {
    "jaseci-like new-plugin acme --dir .": ("tests/test_plugin_kit.py", '"new-plugin", "acme"'),
    "pip install -e './jaseci-like-acme[test]'": (
        "tests/test_plugin_kit.py",
        '"install", "-q", "-e", f"{project}[test]"',
    ),
    "cd jaseci-like-acme && pytest": ("tests/test_plugin_kit.py", '"-m", "pytest"'),
    "jaseci-like plugins --strict": ("tests/test_plugin_kit.py", '"plugins", "--strict"'),
}


def command_of(line: str) -> str:
    return line.split("#", 1)[0].strip()


def test_every_sh_line_is_run_by_some_test() -> None:
    for line in sh_lines():
        command = command_of(line)
        if command == "bash scripts/test" or "jaseci-like up" in command:
            continue  # the two tests below
        if command.startswith("jaseci-like status"):
            continue  # test_status_lines_run
        found = RUN_ELSEWHERE.get(command)
        assert found is not None, f"README sh line {command!r} is run by no test"
        where, how = found
        assert how in (ROOT / where).read_text(), f"{where} no longer runs {command!r}"


@pytest.mark.parametrize(
    "command", [c for c in map(command_of, sh_lines()) if c.startswith("jaseci-like status")]
)
def test_status_lines_run(command: str, tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    env["JASECI_LIKE__API__PORT"] = "0"
    done = subprocess.run(
        [
            "bash",
            "-c",
            command.replace("jaseci-like", str(Path(sys.executable).parent / "jaseci-like"), 1),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=ANSWER_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr


def test_the_test_command_is_the_one_ci_runs() -> None:
    assert "bash scripts/test" in sh_lines()
    assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_run_it_as_written_in_a_copy_of_the_repository(tmp_path: Path) -> None:
    (run_it,) = [line for line in sh_lines() if "jaseci-like up" in line]
    copy = tmp_path / "jaseci-like"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    env = clean_env(tmp_path)
    env["JASECI_LIKE__API__PORT"] = "0"  # beside other tests; the README's 8000 otherwise
    proc = subprocess.Popen(
        ["bash", "-c", run_it],
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    served = Served(proc)
    try:
        served.wait_for_line("ready:", timeout=INSTALL_TIMEOUT)
        served.signal_and_wait(signal.SIGINT)
    finally:
        served.kill()
    assert proc.returncode == 0, served.describe()
    assert "stopped in" in served.stdout
    assert "Traceback" not in served.stderr, served.describe()


def test_the_benchmark_command_of_the_layout_answers() -> None:
    (layout,) = [b for b in of("text") if "benchmarks/run.py" in b.text]
    assert "python benchmarks/run.py [--quick] [NAME ...]" in layout.text
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=ANSWER_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout


# -- the command table -----------------------------------------------------------------------

_ROW = re.compile(r"^\| `jaseci-like ([^`]+)`")
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")


def table_commands() -> list[tuple[list[str], list[str]]]:
    """(command path, options shown) of every row of the README's command table."""
    out: list[tuple[list[str], list[str]]] = []
    for line in README.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        alternatives = [a.strip() for a in match.group(1).split(" / ")]
        first = [w for w in alternatives[0].split() if _WORD.match(w)]
        group = first[:-1] if len(first) > 1 else []
        for n, alternative in enumerate(alternatives):
            words = alternative.split()
            path = [w for w in words if _WORD.match(w)]
            if n > 0:
                path = [*group, *path[:1]]
            options = re.findall(r"--[a-z][a-z-]*", alternative)
            if path[-1:] != ["..."] and (path or options):
                out.append((path, options))
    return out


def test_the_command_table_is_read() -> None:
    paths = [" ".join(p) for p, _ in table_commands()]
    assert {"up", "status", "config show", "config set", "kube plan", "worker"} <= set(paths)


@pytest.mark.parametrize(
    ("path", "options"),
    table_commands(),
    ids=[" ".join(p) or "(global options)" for p, _ in table_commands()],
)
def test_each_command_of_the_table_exists_with_its_options(
    path: list[str], options: list[str]
) -> None:
    Runtime.command_plugins(environ={}).add_commands(cli)
    done = CliRunner().invoke(cli, [*path, "--help"])
    assert done.exit_code == 0, f"jaseci-like {' '.join(path)} --help: {done.output}"
    for option in options:
        assert option in done.output, f"jaseci-like {' '.join(path)} has no {option}"
