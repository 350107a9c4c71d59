"""Operator mistakes get answers that say what and where (issue 12.10).

Through the real command line: a data folder this user cannot write, a full disk
(a real tmpfs of a few hundred KiB, filled to the last byte) and a worker given no
threads. Each answer names the database file and the operating system's reason,
or says what to set.

Root ignores permission bits, so the read-only case runs the command without the
capabilities that let root do so (``setpriv --bounding-set -dac_override,...``): it
then meets the folder's mode as any user would. The full disk is a tmpfs mount,
which needs root (CAP_SYS_ADMIN); without it the test fails saying so.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.plugin_fixtures import ANSWER_TIMEOUT, Cli, parse_table

pytest_plugins = ["tests.plugin_fixtures"]

DB_FILE = "jaseci_like.db"
#: A tmpfs this small holds the embedded database and little else.
DISK_SIZE = "4m"


def run_unprivileged(cli: Cli, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command run as a user whom file permissions bind (root without
    CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH)."""
    command: Sequence[str] = [str(cli.script), *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv is missing: apt-get install util-linux"
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    return subprocess.run(
        command,
        cwd=cli.cwd,
        env=cli.environ(env),
        capture_output=True,
        text=True,
        timeout=ANSWER_TIMEOUT,
        check=False,
    )


def fill(folder: Path) -> None:
    """Write into ``folder`` until its file system has no byte left."""
    chunk = b"\0" * 65536
    with (folder / "filler").open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[: len(chunk) // 2]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_SIZE mounted for one test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (
        f"cannot mount a tmpfs to fill (needs root with CAP_SYS_ADMIN): {done.stderr.strip()}"
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def db_row(stdout: str) -> dict[str, str]:
    rows = {r["SERVICE"]: r for r in parse_table(stdout.splitlines())}
    return rows["db"]


# --------------------------------------------------------------------------- read-only folder


def test_a_read_only_data_folder_is_named_with_the_reason(cli: Cli, tmp_path: Path) -> None:
    data_home = tmp_path / "ro-data"
    folder = data_home / "jaseci-like"
    folder.mkdir(parents=True)
    folder.chmod(0o555)
    env = {"XDG_DATA_HOME": str(data_home)}

    status = run_unprivileged(cli, "status", "--local", env=env)
    listing = run_unprivileged(cli, "domains", "list", env=env)

    assert status.returncode == 5, status.stderr
    error = db_row(status.stdout)["ERROR"]
    assert f"the SQLite database {folder / DB_FILE} cannot be opened" in error
    assert f"cannot create files in its folder {folder}" in error
    assert "permission denied" in error
    assert "db.data_dir" in error  # what to do
    assert listing.returncode == 5, listing.stderr
    assert str(folder / DB_FILE) in listing.stderr and "permission denied" in listing.stderr
    assert "Traceback" not in status.stderr + listing.stderr


def test_a_data_folder_that_cannot_be_created_is_named(cli: Cli, tmp_path: Path) -> None:
    data_home = tmp_path / "ro-home"
    data_home.mkdir()
    data_home.chmod(0o555)

    status = run_unprivileged(cli, "status", "--local", env={"XDG_DATA_HOME": str(data_home)})

    assert status.returncode == 5, status.stderr
    error = db_row(status.stdout)["ERROR"]
    assert f"cannot create the folder {data_home / 'jaseci-like'}" in error
    assert "permission denied" in error
    assert f"write {data_home}," in error  # the folder that refused, not the one missing


# --------------------------------------------------------------------------- full disk


def test_a_full_disk_at_the_first_start_is_named(cli: Cli, small_disk: Path) -> None:
    fill(small_disk)

    status = cli.run("status", "--local", env={"XDG_DATA_HOME": str(small_disk)})

    assert status.returncode == 5, status.stderr
    error = db_row(status.stdout)["ERROR"]
    database = small_disk / "jaseci-like" / DB_FILE
    assert f"the SQLite database {database} cannot be" in error
    assert "no space left on device" in error
    assert "0 bytes free" in error


def test_a_disk_that_fills_up_later_is_named(cli: Cli, small_disk: Path) -> None:
    env = {"XDG_DATA_HOME": str(small_disk)}
    created = cli.run("domains", "create", "first", env=env)
    assert created.returncode == 0, created.stderr
    fill(small_disk)

    refused = cli.run("domains", "create", "second", env=env)

    assert refused.returncode != 0
    database = small_disk / "jaseci-like" / DB_FILE
    assert f"the SQLite database {database} cannot be" in refused.stderr
    assert "no space left on device" in refused.stderr
    assert "not answering" not in refused.stderr
    assert "Traceback" not in refused.stderr


# --------------------------------------------------------------------------- worker


CELERY = {
    "JASECI_LIKE__TASK__MODE": "celery",
    # Nothing listens there: the command must refuse before it connects.
    "JASECI_LIKE__TASK__BROKER_URL": "redis://127.0.0.1:1/0",
}


def test_a_worker_without_threads_is_a_usage_error(cli: Cli) -> None:
    result = cli.run("worker", env={**CELERY, "JASECI_LIKE__TASK__WORKERS": "0"})

    assert result.returncode == 2, result.stderr
    assert "task.workers = 0 (from env JASECI_LIKE__TASK__WORKERS)" in result.stderr
    assert "--concurrency N" in result.stderr
    assert "ready:" not in result.stdout


def test_concurrency_gives_threads_to_a_worker_configured_with_none(cli: Cli) -> None:
    result = cli.run(
        "worker", "--concurrency", "2", env={**CELERY, "JASECI_LIKE__TASK__WORKERS": "0"}
    )

    # Past the check: the broker nobody serves is what stops it now.
    assert result.returncode == 5, result.stderr
    assert "task.workers" not in result.stderr
    assert "127.0.0.1:1" in result.stderr
