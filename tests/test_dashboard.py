"""The dashboard in a real browser: headless Chromium (Debian ``chromium`` and
``chromium-driver``) driven by Selenium, against a runtime serving the API.

One runtime and one browser for the module; each test signs in afresh. Waits are
on conditions (WebDriverWait), never on the clock. Screenshots of each page go to
``$TEST_ARTIFACTS_DIR/dashboard`` (default ``build/test-artifacts/dashboard``).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jaseci_like_services.group_config import DotfileSpec
from jaseci_like_services.task.context import TaskContext
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.api_support import WAIT, ApiRig, api_rig
from tests.group_config_fixtures import ROOT
from tests.servers import RedisServer, ServerMissing

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = (
    "headless Chromium is needed for the dashboard tests: install the Debian packages "
    "with `sudo apt-get install chromium chromium-driver` (or run scripts/setup)"
)
ROOT_DIR = Path(__file__).resolve().parent.parent
#: Steps of the test task; each waits for the test to let it go on.
STEPS = 4
GATES: dict[str, threading.Semaphore] = {}


def artifacts() -> Path:
    base = os.environ.get("TEST_ARTIFACTS_DIR") or str(ROOT_DIR / "build" / "test-artifacts")
    folder = Path(base) / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def stepped(ctx: TaskContext, gate: str, steps: int) -> str:
    """Reports progress after each step the test releases (so nothing races the clock)."""
    for step in range(steps):
        if not GATES[gate].acquire(timeout=WAIT):
            raise TimeoutError(f"step {step} of gate {gate} was never released")
        ctx.progress((step + 1) / steps, f"step {step + 1} of {steps}")
    return "done"


def _chrome() -> WebDriver:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing and shutil.which("chromium") is None:
        pytest.fail(f"{', '.join(missing)} not found: {INSTALL_HINT}", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-gpu", "--no-first-run"):  # fmt: skip
        options.add_argument(arg)
    # Both paths given: Selenium Manager has nothing to download.
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = _chrome()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """A private redis-server this module kills and starts again."""
    try:
        server = RedisServer()
    except ServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[ApiRig]:
    settings = {
        "redis.enabled": "true",
        "redis.url": redis.url,
        "runtime.supervisor.interval": "0.5",
        "runtime.supervisor.backoff_cap": "0.5",
        "runtime.supervisor.give_up_after": "1000",
    }
    with api_rig(tmp_path_factory.mktemp("dashboard"), settings=settings) as rig:
        world = rig.seed()
        rig.tasks.register("ui.steps", stepped)
        rig.reset_dotfiles(
            world.group.id,
            DotfileSpec(".bashrc", "alias ll='ls -l'", "644"),
            DotfileSpec(".config/git/config", "[user]\n  name = member", "600"),
        )
        other = rig.run(rig.app.groups.create("secret-plans", domain="acme", user=ROOT))
        rig.run(rig.app.dotfiles.create(other.id, DotfileSpec(".hidden", "x", "600"), user=ROOT))
        yield rig


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    # A row read while the page redraws it is read again on the next poll.
    waiting = WebDriverWait(
        driver, WAIT, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )
    return waiting.until(condition, f"waited for {what}")


def shot(driver: WebDriver, name: str) -> None:
    driver.save_screenshot(str(artifacts() / f"{name}.png"))


def sign_in(driver: WebDriver, rig: ApiRig, key: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{rig.url}/ui/")
    field = wait_for(driver, lambda d: d.find_element(By.ID, "signin-key"), "the sign-in form")
    wait_for(driver, lambda d: field.is_displayed(), "the sign-in form shown")
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()


def signed_in(driver: WebDriver, rig: ApiRig, role: str) -> None:
    sign_in(driver, rig, rig.keys[role])
    wait_for(driver, lambda d: d.find_element(By.ID, "who").is_displayed(), f"{role} signed in")


def cell_state(driver: WebDriver, selector: str) -> str | None:
    # In one script: the page redraws its tables while the test reads them.
    state: str | None = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute('data-state') : null;",
        selector,
    )
    return state


def service_state(driver: WebDriver, name: str) -> str | None:
    return cell_state(driver, f'#instances tr[data-service="{name}"] td[data-state]')


def test_wrong_key_is_refused_with_a_clear_message(browser: WebDriver, rig: ApiRig) -> None:
    sign_in(browser, rig, "jlk_0123456789abcdef_not-a-real-secret")
    error = browser.find_element(By.ID, "signin-error")
    wait_for(browser, lambda d: "not valid" in error.text, "the refusal")
    assert "ask for a new one" in error.text
    assert not browser.find_element(By.ID, "nav").is_displayed()
    assert browser.get_cookie("jl_session") is None
    shot(browser, "signin-refused")


def test_superadmin_sees_live_service_states(
    browser: WebDriver, rig: ApiRig, redis: RedisServer
) -> None:
    signed_in(browser, rig, "superadmin")
    meta = rig.runtime.meta

    def rows_match(driver: WebDriver) -> bool:
        for name in meta.service_names():
            service = meta.registry.background.get(name)
            real = service.state.name if service is not None else "NOT_STARTED"
            if service_state(driver, name) != real:
                return False
        return True

    wait_for(browser, rows_match, "every service row to show its real state")
    assert service_state(browser, "redis") == "RUNNING"
    node = browser.find_element(By.CSS_SELECTOR, '#graph g[data-node="redis"]')
    assert node.get_attribute("data-state") == "RUNNING"
    assert browser.find_elements(By.CSS_SELECTOR, "#graph path.edge"), "no dependency edges drawn"
    shot(browser, "services")
    # Set in the page: still there later means the page was never reloaded.
    browser.execute_script("window.__notReloaded = true;")

    supervisor = rig.runtime.supervisor
    redis_service = meta.registry.background["redis"]
    passes = supervisor.passes
    redis.kill()
    wait_for(browser, lambda d: redis_service.has_failed(), "the supervisor to fail redis")
    assert supervisor.passes - passes <= 2, "redis was seen failing later than two passes"
    wait_for(browser, lambda d: service_state(d, "redis") == "FAILED", "the redis row FAILED")
    assert cell_state(browser, '#graph g[data-node="redis"]') == "FAILED"
    shot(browser, "services-redis-failed")

    redis.start()
    wait_for(browser, lambda d: service_state(d, "redis") == "RUNNING", "the redis row RUNNING")
    assert browser.execute_script("return window.__notReloaded === true;")
    browser.get(f"{rig.url}/ui/#config")
    wait_for(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-key="redis.url"]'), "config"
    )
    row = browser.find_element(By.CSS_SELECTOR, '[data-key="redis.url"]')
    assert redis.url in row.text and "env JASECI_LIKE__REDIS__URL" in row.text
    shot(browser, "config")


def test_task_progress_and_cancel(browser: WebDriver, rig: ApiRig) -> None:
    world = rig.world
    assert world is not None
    owners = rig.api.state_of_routes
    assert owners is not None

    def submit(gate: str) -> str:
        GATES[gate] = threading.Semaphore(0)
        task_id = rig.tasks.submit("ui.steps", gate=gate, steps=STEPS)
        rig.run(owners.owners.record(task_id, "ui.steps", world.superadmin))
        return task_id

    signed_in(browser, rig, "superadmin")
    browser.get(f"{rig.url}/ui/#tasks")
    task_id = submit("progress")

    def bar(driver: WebDriver) -> float | None:
        found = driver.find_elements(By.CSS_SELECTOR, f'progress[data-task-id="{task_id}"]')
        value = found[0].get_attribute("value") if found else None
        return float(value) if value else None

    for step in range(1, STEPS + 1):
        GATES["progress"].release()
        expected = step / STEPS

        def at_step(driver: WebDriver, expected: float = expected) -> bool:
            return bar(driver) == expected

        wait_for(browser, at_step, f"the bar at {expected}")
        if step == 2:
            shot(browser, "tasks-progress")
    state = f'tr[data-task="{task_id}"] td[data-state]'
    wait_for(browser, lambda d: cell_state(d, state) == "SUCCESS", "the task done")

    doomed = submit("cancel")
    button = f'button[data-cancel="{doomed}"]'
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, button), "a cancel button")
    browser.find_element(By.CSS_SELECTOR, button).click()
    asked = f"Cancel asked for task {doomed}"
    wait_for(browser, lambda d: asked in d.find_element(By.ID, "status").text, "the cancel sent")
    # A running task stops at its next progress report: let it make one.
    GATES["cancel"].release()
    doomed_state = f'tr[data-task="{doomed}"] td[data-state]'
    wait_for(browser, lambda d: cell_state(d, doomed_state) == "REVOKED", "the task REVOKED")
    assert rig.tasks.status(doomed).state.value == "REVOKED"
    shot(browser, "tasks-cancelled")


def test_member_reads_their_group_only(browser: WebDriver, rig: ApiRig) -> None:
    signed_in(browser, rig, "member")
    # Operator pages are neither offered nor reachable.
    assert not browser.find_element(By.CSS_SELECTOR, 'a[href="#config"]').is_displayed()
    browser.get(f"{rig.url}/ui/#config")
    wait_for(browser, lambda d: d.find_element(By.ID, "who").is_displayed(), "signed in again")
    assert not browser.find_element(By.ID, "view-config").is_displayed()
    status = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch('../v1/config').then(r => done(r.status), e => done(String(e)));"
    )
    assert status == 403
    browser.get(f"{rig.url}/ui/#dotfiles")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#dotfiles tr[data-path]"), "rows")
    options = [o.text for o in Select(browser.find_element(By.ID, "group-select")).options]
    assert options == ["acme / research"]
    paths = [
        r.get_attribute("data-path")
        for r in browser.find_elements(By.CSS_SELECTOR, "#dotfiles tr[data-path]")
    ]
    assert paths == [".bashrc", ".config/git/config"]
    assert "read-only" in browser.find_element(By.CSS_SELECTOR, "#dotfiles caption").text
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-edit], [data-delete]")
    assert not browser.find_element(By.ID, "dotfile-form").is_displayed()
    shot(browser, "dotfiles-member")

    browser.find_element(By.ID, "sign-out").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "signin-key").is_displayed(), "signed out")
    status = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch('../v1/users/me').then(r => done(r.status), e => done(String(e)));"
    )
    assert status == 401


def test_admin_edits_dotfiles(browser: WebDriver, rig: ApiRig) -> None:
    world = rig.world
    assert world is not None
    signed_in(browser, rig, "admin")
    browser.get(f"{rig.url}/ui/#dotfiles")
    form = wait_for(browser, lambda d: d.find_element(By.ID, "dotfile-form"), "the form")
    wait_for(browser, lambda d: form.is_displayed(), "the form shown")
    Select(browser.find_element(By.ID, "group-select")).select_by_visible_text("acme / research")
    browser.find_element(By.ID, "dotfile-path").send_keys(".vimrc")
    browser.find_element(By.ID, "dotfile-data").send_keys("set number")
    browser.find_element(By.ID, "dotfile-save").click()
    row = '#dotfiles tr[data-path=".vimrc"]'
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row), "the new row")
    stored = rig.run(rig.app.dotfiles.get(world.group.id, ".vimrc", user=ROOT))
    assert stored.data == "set number"
    shot(browser, "dotfiles-admin")

    browser.find_element(By.CSS_SELECTOR, 'button[data-edit=".vimrc"]').click()
    data = browser.find_element(By.ID, "dotfile-data")
    data.clear()
    data.send_keys("set nonumber")
    browser.find_element(By.ID, "dotfile-save").click()
    wait_for(browser, lambda d: "set nonumber" in d.find_element(By.CSS_SELECTOR, row).text, "edit")
    browser.find_element(By.CSS_SELECTOR, 'button[data-delete=".vimrc"]').click()
    wait_for(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, row), "the row gone")
