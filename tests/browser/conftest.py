"""Headless Chromium against the real exchange under uvicorn (SQLite), for the console's
end-to-end tests (marker ``browser``).

Debian's ``chromium`` and ``chromium-driver`` drive it (``.ci/run`` installs them where
missing); nothing is downloaded. Under ``CI=true`` a missing browser fails the run; elsewhere
the tests are skipped saying what to install. One server and the browsers are shared by a
module's tests (each test signs in afresh); screenshots go to ``var/screenshots/`` or
``$EXCHANGE_SCREENSHOTS_DIR``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange.app import create_app
from exchange.settings import load_settings
from tests.conftest import IN_CI, TEST_SECRET
from tests.sdk.conftest import LiveExchange, LiveServer

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("EXCHANGE_SCREENSHOTS_DIR") or REPO / "var" / "screenshots")
WAIT_S = 10.0  # the longest any page step may take here (a stream event arrives in ms)
LAPTOP = (1280, 800)
PHONE = (390, 844)  # a common phone's CSS pixels
# Run in every page before its own scripts: keeps a handle on each EventSource it opens.
KEEP_STREAMS = """
window.__streams = [];
window.EventSource = class extends window.EventSource {
  constructor(...args) { super(...args); window.__streams.push(this); }
};
"""


def _missing(what: str) -> None:
    message = f"{what}: apt-get install -y chromium chromium-driver (and pip install selenium)"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(message)


def _binaries() -> tuple[str, str]:
    browser = (
        os.environ.get("CHROME_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        _missing("headless Chromium is not installed")
    return browser, driver  # type: ignore[return-value]


class Browser:
    """One Chromium session (its own cookies) with the few steps the tests need."""

    def __init__(self, base_url: str, size: tuple[int, int]) -> None:
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            _missing("selenium is not installed")
        browser, driver = _binaries()
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        # Without the background-networking flags Chromium keeps calling Google's hosts, which a
        # closed CI network refuses many at a time (seen on this kind of machine).
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-extensions", "--disable-quic",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--window-size={size[0]},{size[1]}"):  # fmt: skip
            options.add_argument(arg)
        self.base_url = base_url
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": KEEP_STREAMS}
        )

    def reset(self, size: tuple[int, int] = LAPTOP) -> None:
        self.block([])
        self.driver.delete_all_cookies()
        self.driver.set_window_size(*size)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def block(self, patterns: list[str]) -> None:
        """Fail this browser's requests to these URL patterns (a flaky network, on purpose)."""
        self.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": patterns})

    def hold_streams(self) -> None:
        """Close the page's event streams without telling it: what it has not heard yet, it
        will not hear (Chrome's network emulation leaves open streams alone)."""
        self.driver.execute_script("window.__streams.forEach((s) => s.close())")

    def sign_in(self, key: str) -> None:
        self.open("/console/login")
        self.css("#key").send_keys(key)
        self.css("#sign-in").click()

    def click(self, selector: str, text: str | None = None) -> None:
        """Click the element once it is there (again if the page redrew it meanwhile)."""
        from selenium.common.exceptions import StaleElementReferenceException

        for _ in range(5):
            try:
                self.wait_for(selector, text).click()
                return
            except StaleElementReferenceException:
                continue
        raise AssertionError(f"{selector!r} kept being redrawn")

    def css(self, selector: str) -> Any:
        return self.driver.find_element("css selector", selector)

    def all(self, selector: str) -> list[Any]:
        return self.driver.find_elements("css selector", selector)

    def wait_for(self, selector: str, text: str | None = None) -> Any:
        """The first element matching ``selector`` (containing ``text``), once there."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        def found(_: Any) -> Any:
            try:
                for node in self.all(selector):
                    if text is None or text in node.text:
                        return node
            except StaleElementReferenceException:  # the page re-rendered: look again
                pass
            return False

        try:
            return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.05).until(found)
        except Exception as exc:  # say what the page showed instead
            body = self.css("body").text
            raise AssertionError(
                f"no {selector!r} with {text!r} on {self.driver.current_url}:\n{body}"
            ) from exc

    def wait_url(self, suffix: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, WAIT_S, poll_frequency=0.05).until(
            lambda d: d.current_url.split("?")[0].endswith(suffix)
        )

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def console(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveExchange]:
    """The exchange under uvicorn on a fresh SQLite copy, shared by a module's tests. No
    timers: each test routes its leads itself, so nothing moves behind its back."""
    _binaries()  # skip (or fail in CI) before starting anything
    folder = tmp_path_factory.mktemp("console")
    path = folder / "exchange.db"
    shutil.copy(sqlite_template, path)
    settings = load_settings(
        env={}, database_url=f"sqlite:///{path}", secret_key=TEST_SECRET, var_dir=str(folder / "var"),
        campaign_cache_ttl_ms=0, offer_sweep_interval_s=0, ping_sweep_interval_s=0,
        delivery_sweep_interval_s=0, maintenance_interval_s=0,
    )  # fmt: skip
    with LiveServer(create_app(settings, in_process_worker=False)) as server:
        import httpx

        exchange = LiveExchange(settings, httpx.Client(base_url=server.base_url, timeout=10))
        exchange.base_url = server.base_url
        try:
            yield exchange
        finally:
            exchange.client.close()


@pytest.fixture(scope="module")
def browsers(console: LiveExchange) -> Iterator[tuple[Browser, Browser]]:
    """Two separate browser sessions (two agents at two desks); quit before the server stops,
    so their open event streams do not hold its shutdown."""
    made: list[Browser] = []
    try:
        made.append(Browser(console.base_url, LAPTOP))
        made.append(Browser(console.base_url, LAPTOP))
        yield made[0], made[1]
    finally:
        for browser in made:
            browser.quit()


@pytest.fixture
def pair(browsers: tuple[Browser, Browser]) -> tuple[Browser, Browser]:
    for browser in browsers:
        browser.reset()
    return browsers
