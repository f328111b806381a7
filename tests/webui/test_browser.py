"""The AnimateDiff accordion in a real browser (headless Chromium from Debian's
packages, driven by selenium). Skipped unless SD_WEBUI_URL is set and both are
installed (apt install chromium chromium-driver; pip install selenium).

Screenshots go to SD_WEBUI_SCREENSHOTS (default: a temporary folder) so a
person can look at what the test saw."""

import os
import tempfile

import pytest
from browser import MISSING, chromium, wait

from motion_module.request.params import SPECS

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")

pytestmark = pytest.mark.skipif(not URL or bool(MISSING), reason="needs SD_WEBUI_URL" if not URL else MISSING or "")


@pytest.fixture(scope="module")
def browser(webui):
    with chromium(1400, 3000) as driver:
        driver.get(URL)
        yield driver


@pytest.fixture(scope="module")
def shots():
    folder = os.environ.get("SD_WEBUI_SCREENSHOTS") or tempfile.mkdtemp(prefix="animatediff-shots-")
    os.makedirs(folder, exist_ok=True)
    return folder


def _wait(driver, condition, timeout=120):
    return wait(driver, condition, timeout)


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


# --- The result panel plays the videos (animatediff_webui/player.py, javascript/animatediff_player.js) ---

FRAMES, FPS = 16, 8


def _set_value(driver, css, value):
    """A number or text input set as typing does (gradio binds on input events)."""
    from selenium.webdriver.common.by import By

    elem = _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, css))
    driver.execute_script("arguments[0].value = arguments[1];"
                          "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
                          "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));", elem, str(value))


def _check(driver, css, on):
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, css)
    if box.is_selected() != on:
        driver.execute_script("arguments[0].click();", box)
    _wait(driver, lambda d: box.is_selected() == on)


def _formats(driver, elem_id, wanted):
    """A gradio 3 checkbox group: its labels carry the choice and a "selected" class."""
    from selenium.webdriver.common.by import By

    for label in driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} label"):
        on = label.text.strip() in wanted
        if ("selected" in label.get_attribute("class").split()) != on:
            driver.execute_script("arguments[0].click();", label.find_element(By.TAG_NAME, "input"))
            _wait(driver, lambda d, b=label, o=on: ("selected" in b.get_attribute("class").split()) == o)


def _choose(driver, elem_id, value):
    """A dropdown: open it (which also lists the motion modules again) and pick `value`. Its options
    carry the value in data-value (gradio 3, A1111) or aria-label (gradio 4, Forge)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    css = f'#{elem_id} li[data-value="{value}"], #{elem_id} li[aria-label="{value}"]'

    def picked(d):
        try:
            box = d.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
            if box.get_attribute("value") == value:
                return True
            options = d.find_elements(By.CSS_SELECTOR, css)
            if options:
                options[0].click()
            else:  # open it again: gradio 3 shows choices that came in while it was open only on the next opening
                d.execute_script("arguments[0].blur();", box)
                box.click()
        except StaleElementReferenceException:
            pass  # the list was drawn again: its choices came back from the server
        return False

    _wait(driver, picked)


@pytest.fixture(scope="module")
def served_outputs(webui):
    """The WebUI's default output folders, which its /file= route serves: a folder set elsewhere (a test
    killed before restoring it) would leave the player saying "not playable here" instead of playing."""
    names = ("outdir_samples", "outdir_txt2img_samples", "outdir_img2img_samples")
    current = webui.options()
    before = {name: current[name] for name in names if name in current}
    webui.set_options(**{name: "" for name in names})
    yield
    webui.set_options(**before)


def _set_up_generation(driver, tab, model, batch_count=1):
    from selenium.webdriver.common.by import By

    _open_accordion(driver, tab)
    ad = f"animatediff-{tab}"
    _check(driver, f"#{ad}-enable input[type=checkbox]", True)
    _choose(driver, f"{ad}-motion-module", model)
    _formats(driver, f"{ad}-save-format", {"GIF", "MP4"})
    _set_value(driver, f"#{ad}-video-length input[type=number]", FRAMES)
    _set_value(driver, f"#{ad}-fps input[type=number]", FPS)
    _type_prompt(driver, driver.find_element(By.CSS_SELECTOR, f"#{tab}_prompt textarea"), "a cat")
    _type_prompt(driver, driver.find_element(By.CSS_SELECTOR, f"#{tab}_neg_prompt textarea"), "a dog")
    for name, value in (("width", 64), ("height", 64), ("steps", 2), ("batch_count", batch_count)):
        _set_value(driver, f"#{tab}_{name} input[type=number]", value)


def _generate(driver, tab, timeout=900):
    """Click Generate and wait for this generation's players (the previous ones go when it starts)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    old = driver.find_elements(By.ID, f"animatediff-{tab}-player")
    driver.find_element(By.ID, f"{tab}_generate").click()
    if old:
        _wait(driver, expected_conditions.staleness_of(old[0]), timeout=60)
    return _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#animatediff-{tab}-player video"),
                 timeout=timeout)


def _check_players(driver, tab, videos, count):
    """Each plays a FRAMES/FPS-second clip, loops muted with controls; the downloads answer 200; the
    gallery and the infotext are there as before."""
    import requests
    from selenium.webdriver.common.by import By

    assert len(videos) == count
    for video in videos:
        _wait(driver, lambda d, v=video: d.execute_script("return arguments[0].readyState", v) >= 1, timeout=60)
        assert driver.execute_script("return [arguments[0].loop, arguments[0].muted, arguments[0].controls]",
                                     video) == [True, True, True]
        assert driver.execute_script("return arguments[0].duration", video) == pytest.approx(FRAMES / FPS, abs=0.2)
        start = driver.execute_script("arguments[0].play(); return arguments[0].currentTime;", video)
        _wait(driver, lambda d, v=video, t=start: d.execute_script("return arguments[0].currentTime", v) != t, timeout=20)
    links = driver.find_elements(By.CSS_SELECTOR, f"#animatediff-{tab}-player a")
    assert sorted(link.text for link in links) == sorted(["MP4", "GIF"] * count)
    for link in links:
        href = link.get_attribute("href")
        assert href.startswith(URL + "/file="), href
        assert requests.get(href, timeout=60).status_code == 200, href
    images = driver.find_elements(By.CSS_SELECTOR, f"#{tab}_gallery img")
    assert images and all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
    info = driver.find_element(By.ID, f"html_info_{tab}").text
    assert "Steps: 2" in info and "AnimateDiff" in info


def test_txt2img_plays_the_mp4_under_the_gallery(browser, shots, motion_modules, served_outputs):
    _set_up_generation(browser, "txt2img", motion_modules["v2"])
    videos = _generate(browser, "txt2img")
    _check_players(browser, "txt2img", videos, 1)
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "animatediff-txt2img-player").screenshot(os.path.join(shots, "player-txt2img.png"))


def test_batch_count_2_gives_two_players(browser, motion_modules, served_outputs):
    _set_up_generation(browser, "txt2img", motion_modules["v2"], batch_count=2)
    videos = _generate(browser, "txt2img")
    _check_players(browser, "txt2img", videos, 2)


def test_xyz_grid_gives_a_player_per_cell(browser, motion_modules, served_outputs):
    # X/Y/Z plot over two seeds: each cell is a video of its own, and each gets a player.
    _set_up_generation(browser, "txt2img", motion_modules["v2"])
    scripts = "tab_txt2img #script_list"
    _choose(browser, scripts, "X/Y/Z plot")
    try:
        values = "#script_txt2img_xyz_plot_x_values"
        _set_value(browser, f"{values} textarea, {values} input", "1,2")  # X type is Seed by default
        videos = _generate(browser, "txt2img")
        _check_players(browser, "txt2img", videos, 2)
    finally:
        _choose(browser, scripts, "None")


def test_send_to_img2img_and_img2img_plays_too(browser, shots, motion_modules, served_outputs):
    from selenium.webdriver.common.by import By

    _show_tab(browser, "txt2img")
    browser.find_element(By.ID, "txt2img_send_to_img2img").click()  # the gallery's GIF, as before
    _wait(browser, lambda d: d.find_element(By.ID, "tab_img2img").is_displayed())
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#img2img_image img"))
    _set_up_generation(browser, "img2img", motion_modules["v2"])
    videos = _generate(browser, "img2img")
    _check_players(browser, "img2img", videos, 1)
    browser.find_element(By.ID, "animatediff-img2img-player").screenshot(os.path.join(shots, "player-img2img.png"))



def _number(driver, elem_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=number]").get_attribute("value")


def test_paste_reads_a_videos_infotext_into_the_accordion(browser, webui, shots, motion_modules):
    """The WebUI's paste button (↙) with an AnimateDiff video's infotext, as the API wrote it, in the
    prompt box: the accordion takes the video's settings (last: it leaves them set)."""
    import json

    from selenium.webdriver.common.by import By

    args = {"enable": True, "model": motion_modules["v1"], "video_length": 12, "fps": 6, "motion_scale": 1.25,
            "format": ["GIF"]}
    r = webui.post("/sdapi/v1/txt2img", json={"prompt": "a cat", "negative_prompt": "a dog", "steps": 2,
                                              "width": 64, "height": 64, "seed": 5, "sampler_name": "Euler",
                                              "alwayson_scripts": {"AnimateDiff": {"args": [args]}}})
    assert r.status_code == 200, r.text[:500]
    infotext = json.loads(r.json()["info"])["infotexts"][0]
    assert "AnimateDiff: " in infotext
    ad = "animatediff-txt2img"
    _open_accordion(browser, "txt2img")
    _check(browser, f"#{ad}-enable input[type=checkbox]", False)
    _choose(browser, f"{ad}-motion-module", motion_modules["v2"])
    for name, value in (("video-length", 16), ("fps", 8), ("motion-scale", 1)):
        _set_value(browser, f"#{ad}-{name} input[type=number]", value)
    _type_prompt(browser, browser.find_element(By.CSS_SELECTOR, "#txt2img_prompt textarea"), infotext)
    browser.find_element(By.CSS_SELECTOR, "#txt2img_tools #paste, #tab_txt2img #paste").click()
    enable = browser.find_element(By.CSS_SELECTOR, f"#{ad}-enable input[type=checkbox]")
    _wait(browser, lambda d: _number(d, f"{ad}-video-length") == "12", timeout=30)
    assert _number(browser, f"{ad}-fps") == "6"
    assert float(_number(browser, f"{ad}-motion-scale")) == 1.25
    assert enable.is_selected()
    model = browser.find_element(By.CSS_SELECTOR, f"#{ad}-motion-module input").get_attribute("value")
    assert model == motion_modules["v1"]
    assert browser.find_element(By.CSS_SELECTOR, "#txt2img_prompt textarea").get_attribute("value") == "a cat"
    _open_accordion(browser, "txt2img").screenshot(os.path.join(shots, "pasted-infotext.png"))
