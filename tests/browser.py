"""Headless Chromium for the tests that look at a page (Debian's chromium and
chromium-driver, driven by selenium): the player page and the WebUI's tab."""

import contextlib
import shutil
import tempfile

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
MISSING = None if CHROMIUM and DRIVER else "needs chromium and chromedriver"


@contextlib.contextmanager
def chromium(width, height):
    """A headless Chromium window of width × height, closed afterwards; skips without selenium."""
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.TemporaryDirectory(prefix="animatediff-chromium-")
    # A fresh profile and no background connections: on a machine with a closed
    # network Chromium's own update/sync requests are refused, many at a time.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={profile.name}",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        profile.cleanup()


def wait(driver, condition, timeout, poll=0.5):
    """What `condition(driver)` returns once it is truthy, within `timeout` seconds."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=poll).until(condition)
