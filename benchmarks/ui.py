"""Dashboard figures, in headless Chromium (Debian ``chromium`` + ``chromium-driver``).

``ui.load_ms``: from navigation start to the services page fully drawn (every
service row of every instance and the dependency graph, from the first
``/v1/instances`` answer) with 10 instances x 10 services, against the
DOMContentLoaded of a static page of the same markup and stylesheet served from
this process (what a page with nothing to fetch costs the same browser).

The runtime is real (9 built-in services and the benchmarks' probe service); the
10 instances are its own one listed ten times under different ids, a stand-in for
the instance registry (issue 14) behind the same ``InstanceSource``.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.probe import ProbePlugin
from benchmarks.registry import Context, bench
from benchmarks.timing import median
from jaseci_like import MetaService, Runtime

INSTANCES = 10
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 60.0


class ManyInstances:
    """This process's instance listed ``count`` times, each under its own id."""

    def __init__(self, local: Any, count: int) -> None:
        self.local = local
        self.count = count

    def instances(self) -> Any:
        listed = self.local.instances()
        [one] = listed.items
        items = [one.model_copy(update={"id": f"{one.id}-{n}"}) for n in range(self.count)]
        return listed.model_copy(update={"items": items})


@contextlib.contextmanager
def _served() -> Iterator[tuple[str, str]]:
    """A runtime with 10 services, its API listing 10 instances; (url, superadmin key)."""
    folder = tempfile.TemporaryDirectory(prefix="jl-bench-ui-")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JASECI_LIKE")}
    environ["JASECI_LIKE__DB__DATA_DIR"] = folder.name
    environ["JASECI_LIKE__API__PORT"] = "0"
    runtime = Runtime(
        meta=MetaService.isolated(), environ=environ, plugins={"probe": ProbePlugin()}
    )
    try:
        runtime.start()
        api: Any = runtime.meta.get_service("api")
        api.app.state.instances = ManyInstances(api.app.state.instances, INSTANCES)
        gc: Any = runtime.meta.get_service("group_config").app
        root = gc.system_user()
        admin = gc.sync.users.create("admin@bench.test", "superadmin", user=root)
        token = runtime.meta.loop.run(api.keys.issue(admin.id, actor=root)).token
        yield api.url, token
    finally:
        runtime.stop(timeout=10.0)
        folder.cleanup()


@contextlib.contextmanager
def _static(html: str, css: bytes) -> Iterator[str]:
    """The drawn page saved as a static file (scripts dropped) beside its stylesheet."""
    folder = tempfile.TemporaryDirectory(prefix="jl-bench-ui-static-")
    root = Path(folder.name)
    (root / "static").mkdir()
    (root / "index.html").write_text(html)
    (root / "static" / "app.css").write_bytes(css)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=folder.name, **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        folder.cleanup()


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-gpu"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


_DRAWN = "return performance.getEntriesByName('jl:services-drawn').length > 0"
_DRAWN_AT = "return performance.getEntriesByName('jl:services-drawn')[0].startTime"
_DCL = "return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
_STATIC = (
    "const doc = document.documentElement.cloneNode(true);"
    "doc.querySelectorAll('script').forEach(s => s.remove());"
    "return '<!doctype html>' + doc.outerHTML;"
)


@bench("ui.load_ms", unit="ms", better="lower")
def load_ms(ctx: Context) -> tuple[float, float]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    rounds = ctx.rounds(7)
    ours: list[float] = []
    static: list[float] = []
    rows = "#instances tr[data-service]"
    driver = _browser()
    try:
        with _served() as (url, token):
            driver.get(f"{url}/ui/")
            WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "signin-key"))
            driver.find_element(By.ID, "signin-key").send_keys(token)
            driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
            WebDriverWait(driver, WAIT).until(lambda d: d.execute_script(_DRAWN))
            shown = len(driver.find_elements(By.CSS_SELECTOR, rows))
            ctx.notes.append(f"{shown} service rows drawn per load")
            if shown != INSTANCES * 10:
                ctx.problems.append(f"expected {INSTANCES * 10} service rows, saw {shown}")
            html = driver.execute_script(_STATIC)
            css = driver.execute_script(
                "return fetch('static/app.css').then(r => r.text())"
            ).encode()
            with _static(html, css) as page:
                for _ in range(rounds):
                    driver.get(f"{url}/ui/#services")
                    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script(_DRAWN))
                    ours.append(float(driver.execute_script(_DRAWN_AT)))
                    driver.get(page)
                    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script(_DCL) > 0)
                    static.append(float(driver.execute_script(_DCL)))
            ctx.notes.append(f"static page of {len(html)} characters")
    finally:
        driver.quit()
    return median(ours), median(static)
