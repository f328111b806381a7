"""The AnimateDiff accordion in a real browser (headless Chromium from Debian's
packages, driven by selenium). Skipped unless SD_WEBUI_URL is set and both are
installed (apt install chromium chromium-driver; pip install selenium).

Screenshots go to SD_WEBUI_SCREENSHOTS (default: a temporary folder) so a
person can look at what the test saw."""

import os
import shutil
import tempfile

import pytest

from motion_module.request.params import SPECS

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (URL and CHROMIUM and DRIVER), reason="needs SD_WEBUI_URL, chromium, chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,3000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    driver.get(URL)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots():
    folder = os.environ.get("SD_WEBUI_SCREENSHOTS") or tempfile.mkdtemp(prefix="animatediff-shots-")
    os.makedirs(folder, exist_ok=True)
    return folder


def _wait(driver, condition, timeout=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _by_id(elem_id):
    from selenium.webdriver.common.by import By

    return lambda driver: driver.find_element(By.ID, elem_id)


def _show_tab(driver, tab):
    from selenium.webdriver.common.by import By

    _wait(driver, _by_id(f"tab_{tab}"))
    index = {"txt2img": 1, "img2img": 2}[tab]
    driver.find_element(By.CSS_SELECTOR, f"#tabs > .tab-nav > button:nth-child({index})").click()
    _wait(driver, lambda d: d.find_element(By.ID, f"tab_{tab}").is_displayed())


def _open_accordion(driver, tab):
    """The tab shown and its AnimateDiff accordion open (whatever ran before)."""
    from selenium.webdriver.common.by import By

    _show_tab(driver, tab)
    accordion = _wait(driver, _by_id(f"animatediff-{tab}-accordion"))
    enable = driver.find_element(By.ID, f"animatediff-{tab}-enable")
    if not enable.is_displayed():
        accordion.find_element(By.CSS_SELECTOR, ".label-wrap").click()
        _wait(driver, lambda d: enable.is_displayed())
    driver.execute_script("arguments[0].scrollIntoView();", accordion)
    return accordion


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_accordion_has_every_control_with_its_hint(browser, shots, tab):
    from selenium.webdriver.common.by import By

    accordion = _open_accordion(browser, tab)
    expected = [name for name, spec in SPECS.items() if spec.ui != "hidden" and (tab == "img2img" or not spec.img2img)]
    for name in expected:
        elem = _wait(browser, _by_id(f"animatediff-{tab}-{SPECS[name].elem_suffix(name)}"))
        assert elem.is_displayed(), name
        _wait(browser, lambda d, e=elem: e.get_attribute("title") == SPECS[name].hint)  # hints.js ran
    for name, spec in SPECS.items():
        if spec.img2img and tab == "txt2img":
            assert not browser.find_element(By.ID, f"animatediff-{tab}-{spec.elem_suffix(name)}").is_displayed()
    accordion.screenshot(os.path.join(shots, f"accordion-{tab}.png"))


def test_unload_buttons_say_what_they_did(browser, shots):
    from selenium.webdriver.common.by import By

    _open_accordion(browser, "txt2img")
    status = _wait(browser, _by_id("animatediff-txt2img-memory-status"))
    browser.find_element(By.ID, "animatediff-txt2img-remove").click()
    # (gradio shows a progress text in the element while the click is handled)
    _wait(browser, lambda d: status.text.strip().startswith(("Removed", "No motion module is loaded")))
    browser.find_element(By.ID, "animatediff-txt2img-unload").click()
    _wait(browser, lambda d: status.text.strip() == "No motion module is loaded.")
    status.screenshot(os.path.join(shots, "memory-status.png"))


def _type_prompt(driver, box, text):
    # As typing does: the value changes and an input event follows (selenium's
    # send_keys sends Enter for "\n", which the WebUI's prompt box handles itself).
    driver.execute_script("arguments[0].value = arguments[1];"
                          "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", box, text)


def test_travel_preview_shows_how_the_prompt_was_read(browser, shots):
    from selenium.webdriver.common.by import By

    _open_accordion(browser, "txt2img")
    box = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#txt2img_prompt textarea"))
    preview = browser.find_element(By.ID, "animatediff-txt2img-travel-preview")
    _type_prompt(browser, box, "best quality\n0: a cat\n8: a dog")
    _wait(browser, lambda d: "frames 8–15: best quality, a dog" in preview.text)
    assert "frames 0–7: best quality, a cat" in preview.text
    preview.screenshot(os.path.join(shots, "travel-preview.png"))
    _type_prompt(browser, box, "best quality\n0: a cat\n8: a dog\n20: a bird")
    _wait(browser, lambda d: "keyframe 20" in preview.text and "line 4" in preview.text)
    preview.screenshot(os.path.join(shots, "travel-preview-error.png"))
    _type_prompt(browser, box, "")
