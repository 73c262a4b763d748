"""Debian's chromium driven by Selenium for the web panel's tests: headless, the apt packages' binary and
driver (``chromium``, ``chromium-driver``; scripts/setup-host installs them), never a downloaded browser.

A ``Person`` is one browser (its own cookies) signed in to the panel; ``phone_width`` emulates a 375 px
wide phone (headless chromium will not open a window that narrow, so the device metrics are set).
Screenshots go to ``test-artifacts/panel/`` (gitignored); README's are copied from there into docs/.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "panel"
PHONE, DESKTOP = (375, 812), (1280, 900)


# What a newer chromium answers instead of "stale element" for an element of a document it replaced
# (156.0.8078.129: "unknown error: unhandled inspector error: ... Node with given id does not belong to
# the document"); Selenium's ``staleness_of`` does not count it as stale.
DETACHED = "does not belong to the document"


def replaced(page: WebElement) -> bool:
    """Whether ``page`` (the old ``html`` element) is gone: its document was replaced."""
    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if DETACHED not in str(error.msg):
            raise
        return True
    return False


class Person:
    """A browser at the panel's ``root`` (``http://host:port/panel``)."""

    def __init__(self, root: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=en-GB"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_window_size(*DESKTOP)
        self.root = root

    def open(self, path: str) -> None:
        self.driver.get(self.root + path)

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.root)

    def find(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def follow(self, selector: str) -> None:
        """Click a link or a form's button and wait for the next page (the click does not wait)."""
        page = self.find("html")
        self.find(selector).click()
        WebDriverWait(self.driver, 15).until(lambda _: replaced(page))

    def text(self, selector: str) -> str | None:
        """An element's text read in one step (a live row may be replaced between a find and a read)."""
        found = self.driver.execute_script(
            "const node = document.querySelector(arguments[0]); return node && node.textContent.trim()",
            selector,
        )
        return None if found is None else str(found)

    def tab_to(self, selector: str, presses: int = 60) -> WebElement:
        """Move the keyboard focus with Tab until it is on ``selector`` (keyboard-usable: it gets there)."""
        wanted = self.find(selector)
        for _ in range(presses):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            if self.driver.switch_to.active_element == wanted:
                return wanted
        raise AssertionError(f"{presses} presses of Tab never reached {selector}")

    def press_enter(self) -> None:
        """Enter on the focused element, waiting for the page it opens."""
        page = self.find("html")
        ActionChains(self.driver).send_keys(Keys.ENTER).perform()
        WebDriverWait(self.driver, 15).until(lambda _: replaced(page))

    def sign_in(self, *, name: str = "", password: str = "", token: str = "") -> None:
        self.open("/login")
        for field, value in (("name", name), ("password", password), ("token", token)):
            if value:
                self.find(f"#{field}").send_keys(value)
        self.follow("#sign-in")

    def set_value(self, selector: str, value: str) -> None:
        """A field's value as a person's picker leaves it (a datetime-local's typing is locale-bound)."""
        self.driver.execute_script("arguments[0].value = arguments[1]", self.find(selector), value)

    def horizontal_overflow(self) -> int:
        """How many CSS pixels the page is wider than the window (0: no horizontal scroll)."""
        return int(
            self.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
        )

    @contextlib.contextmanager
    def phone_width(self) -> Iterator[None]:
        """The page laid out again for a 375 px wide phone until the block ends."""
        width, height = PHONE
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        try:
            yield
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        with contextlib.suppress(WebDriverException):
            self.driver.quit()
