"""A real browser through the gateway, on apps_example/gateway.toml (the config `make run` serves):
headless Chromium logs into the Django admin and adds a note, then signs the PHP guestbook.

Debian's chromium and chromium-driver, driven by selenium with the driver's path given, so
nothing is downloaded. Every host name resolves to 127.0.0.1 (--host-resolver-rules), where
the test server listens on its own port: the browser talks to loopback only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver import Chrome, ChromeOptions
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import require_program
from tests.e2e.test_apps_example import DEMO_PASSWORD, DEMO_USER, example
from tests.support.server import Gateway

pytestmark = [pytest.mark.e2e, pytest.mark.php, pytest.mark.slow, pytest.mark.timeout(60)]
__all__ = ["example"]  # the example config's server, with its own database, for this module

WAIT = 10  # seconds a page may take to show what a step waits for
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * 127.0.0.1",
    "--window-size=1280,900",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chrome]:
    options = ChromeOptions()
    options.binary_location = require_program("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = Chrome(options=options, service=Service(require_program("chromedriver")))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def shown(browser: Chrome, css: str) -> WebElement:
    """The element once it is on the page (at most WAIT seconds)."""
    element: WebElement = WebDriverWait(browser, WAIT).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    return element


def test_django_admin_login_and_add_a_note(example: Gateway, browser: Chrome) -> None:
    site = f"http://django.localhost:{example.port}"
    browser.get(f"{site}/admin/")
    shown(browser, "#id_username").send_keys(DEMO_USER)
    browser.find_element(By.CSS_SELECTOR, "#id_password").send_keys(DEMO_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert "Site administration" in shown(browser, "#content h1").text
    styled = browser.execute_script(
        "return [...document.styleSheets].some(s => s.href && s.href.endsWith('/static/admin/css/base.css')"
        " && s.cssRules.length > 0)"
    )
    assert styled, "the admin's stylesheet came through the static route"

    browser.find_element(By.CSS_SELECTOR, 'a[href="/admin/notes/note/add/"]').click()
    shown(browser, "#id_title").send_keys("Written in a browser <b>")
    browser.find_element(By.CSS_SELECTOR, "#id_body").send_keys("Through the gateway's wsgi handler.")
    browser.find_element(By.CSS_SELECTOR, "input[name=_save]").click()
    assert "was added successfully" in shown(browser, "ul.messagelist li.success").text

    browser.get(f"{site}/")
    assert shown(browser, ".note h2").text == "Written in a browser <b>"


def test_php_guestbook_form(example: Gateway, browser: Chrome) -> None:
    browser.get(f"http://php.localhost:{example.port}/")
    shown(browser, "input[name=name]").send_keys("Grace")
    browser.find_element(By.CSS_SELECTOR, "textarea[name=message]").send_keys("Signed by <i>Chromium</i>")
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    assert "Thank you, Grace" in shown(browser, "p.flash").text
    entry = shown(browser, "article.entry").text
    assert "Grace" in entry and "Signed by <i>Chromium</i>" in entry


def test_django_live_counter_in_two_windows(example: Gateway, browser: Chrome) -> None:
    """Chromium's own WebSocket to the Channels consumer: a click in one window shows in the other."""
    page = f"http://django.localhost:{example.port}/live/"
    browser.get(page)
    first = browser.current_window_handle
    WebDriverWait(browser, WAIT).until(lambda b: b.find_element(By.ID, "status").text == "connected")
    browser.switch_to.new_window("window")
    browser.get(page)
    WebDriverWait(browser, WAIT).until(lambda b: b.find_element(By.ID, "watching").text == "2")
    before = int(browser.find_element(By.ID, "clicks").text)
    browser.find_element(By.ID, "click").click()
    browser.close()
    browser.switch_to.window(first)
    WebDriverWait(browser, WAIT).until(lambda b: b.find_element(By.ID, "clicks").text == str(before + 1))
    WebDriverWait(browser, WAIT).until(lambda b: b.find_element(By.ID, "watching").text == "1")
