"""A real Prometheus server for the tests (the Debian ``prometheus`` package).

It listens on a free port of 127.0.0.1, keeps its config and time-series
database in a temporary directory of its own, and scrapes the targets it is
given every ``scrape_interval``. ``stop()`` then ``start()`` brings it back on the
same port with the same data; ``close()`` removes everything.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import yaml

from tests.servers import LOOPBACK, ServerError, ServerMissing, free_port

PROMETHEUS_INSTALL_HINT = (
    "prometheus not found: install it with `apt-get install prometheus` "
    "(or run `bash scripts/setup`)"
)


class PrometheusServer:
    """``targets``: job name -> ``host:port`` addresses scraped at ``/metrics``."""

    label = "the prometheus server"

    def __init__(
        self,
        targets: Mapping[str, Sequence[str]],
        *,
        scrape_interval: str = "1s",
        port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        found = shutil.which("prometheus")
        if found is None:
            raise ServerMissing(PROMETHEUS_INSTALL_HINT)
        self.binary = found
        self.targets = {job: list(addresses) for job, addresses in targets.items()}
        self.scrape_interval = scrape_interval
        self.port = port if port is not None else free_port()
        self.startup_timeout = startup_timeout
        self.directory = Path(tempfile.mkdtemp(prefix="jl-prometheus-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> Path:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": addresses}]}
                for job, addresses in self.targets.items()
            ],
        }
        path = self.directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> Self:
        """Start it (again on the same port) and wait until ``/-/ready`` says 200."""
        if self.running:
            return self
        log = (self.directory / "prometheus.log").open("ab")
        self._proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self._write_config()}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while not self.ready():
            if self._proc.poll() is not None:
                code, self._proc = self._proc.returncode, None
                raise ServerError(f"prometheus exited with {code}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"prometheus was not ready within {self.startup_timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)  # polling a starting process: nothing to wait on instead
        return self

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = (self.directory / "prometheus.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
