"""javascript/animatediff_player.js in headless Chromium, on a stand-in page.

The page has what the script touches in the WebUI (requestProgress, the
gallery container) and a small server answers the videos route (with
animatediff_webui.player's own describe/FileRules) and file= URLs; the
videos are real ones written by motion_module.video. Skipped without
selenium, chromium and chromedriver (apt install chromium chromium-driver;
pip install selenium). tests/webui/test_browser.py does it in a real WebUI.
"""

import http.server
import json
import os
import threading
import urllib.parse
import urllib.request

import pytest
from browser import MISSING, chromium, wait
from PIL import Image

from animatediff_webui.player import FileRules, Record, describe
from motion_module.video import VideoOptions, save_video

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "javascript",
                      "animatediff_player.js")
FRAMES, FPS = 16, 8

pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING or "")

PAGE = """<!doctype html><html><body>
<div id="txt2img_results_panel"><div id="txt2img_gallery_container"><div id="txt2img_gallery">
<img id="gallery-image" src="./file=%(gif)s"></div></div><div id="html_info_txt2img">Steps: 2</div></div>
<script>
function gradioApp() { return document; }
var uiLoaded = [];
function onUiLoaded(f) { uiLoaded.push(f); }
var progressEnded = 0;
function requestProgress(id_task, progressbarContainer, gallery, atEnd) {
    // As the WebUI's: the bar goes before the gallery, atEnd when the task is over.
    var bar = document.createElement("div");
    bar.className = "progressDiv";
    progressbarContainer.parentNode.insertBefore(bar, progressbarContainer);
    setTimeout(function() { bar.remove(); progressEnded++; atEnd(); }, 50);
}
function generate(task) {
    requestProgress(task, document.getElementById("txt2img_gallery_container"),
                    document.getElementById("txt2img_gallery"), function() {});
}
</script>
<script src="./animatediff_player.js"></script>
<script>uiLoaded.forEach(function(f) { f(); });</script>
</body></html>"""


class Site:
    """The stand-in WebUI: its folder, the record of tasks, and their states."""

    def __init__(self, root):
        self.root = root
        self.record = Record()
        self.states = {}
        self.rules = FileRules(root)
        self.gif = ""
        self.requests = []  # what the page asked for, to say why a wait failed


def _handler(site):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, body, kind):
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            site.requests.append(f"{self.command} {self.path} Range={self.headers.get('Range')}")
            if path == "/":
                return self._send(200, (PAGE % {"gif": site.gif}).encode(), "text/html")
            if path == "/animatediff_player.js":
                with open(SCRIPT, "rb") as f:
                    return self._send(200, f.read(), "text/javascript")
            if path == "/animatediff/v1/videos":
                task = urllib.parse.parse_qs(url.query).get("task", [""])[0]
                state = site.states.get(task, "done")
                found = site.record.get(task) or []
                answer = {"task": task, "state": state, "videos": describe(found, site.rules)}
                return self._send(200, json.dumps(answer).encode(), "application/json")
            if path.startswith("/file="):  # as the WebUI's route: only what its rules allow
                file = path[len("/file="):]
                if site.rules.refusal(file) is not None or not os.path.isfile(file):
                    return self._send(403, b"File not allowed", "text/plain")
                kind = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif"}.get(
                    os.path.splitext(file)[1], "application/octet-stream")
                with open(file, "rb") as f:
                    return self._send(200, f.read(), kind)
            return self._send(404, b"", "text/plain")

    return Handler


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("webui"))
    site = Site(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield site
    server.shutdown()


def write_video(folder, seed, formats=("GIF", "MP4")):
    pytest.importorskip("imageio_ffmpeg")
    frames = [Image.new("RGB", (64, 64), (i * 15, 255 - i * 15, 128)) for i in range(FRAMES)]
    return save_video(frames, formats, VideoOptions(fps=FPS), folder, seed).paths


@pytest.fixture(scope="module")
def browser(site):
    with chromium(1200, 1600) as driver:
        yield driver


def _wait(driver, condition, timeout=30):
    return wait(driver, condition, timeout, poll=0.1)


def _first_video_ready(browser, site, timeout=60):
    """The player's first video once its metadata is loaded; on a timeout, what the page and server saw."""
    from selenium.common.exceptions import TimeoutException

    try:
        return _wait(browser, lambda d: d.execute_script(
            "var v = document.querySelector('#animatediff-txt2img-player video');"
            "return v && v.readyState >= 1 ? v : null;"), timeout)
    except TimeoutException:
        state = browser.execute_script(
            "var v = document.querySelector('#animatediff-txt2img-player video');"
            "var p = document.getElementById('animatediff-txt2img-player');"
            "return {player: p ? p.outerHTML : null, readyState: v && v.readyState,"
            " networkState: v && v.networkState, error: v && v.error && [v.error.code, v.error.message],"
            " canPlayMp4: document.createElement('video').canPlayType('video/mp4')};")
        pytest.fail(f"no playable video after {timeout} s: page {state}; requests {site.requests}")


def _players(driver):
    return driver.execute_script(
        "var p = document.getElementById('animatediff-txt2img-player');"
        "return p ? p.querySelectorAll('.animatediff-player-video').length : 0;")


def _generate(browser, site, task, *videos, state="done"):
    for paths in videos:
        site.record.add(task, paths)
    site.states[task] = state
    browser.execute_script("generate(arguments[0]);", task)


def test_the_video_plays_under_the_gallery_with_its_downloads(browser, site):
    paths = write_video(os.path.join(site.root, "outputs"), seed=1)
    site.gif = str(paths["GIF"])
    browser.get(site.url)
    _generate(browser, site, "task(one)", paths)
    video = _first_video_ready(browser, site)
    # placed right after the gallery, which is untouched
    assert browser.execute_script("return document.getElementById('txt2img_gallery_container').nextSibling.id") \
        == "animatediff-txt2img-player"
    assert browser.execute_script("return document.getElementById('gallery-image').naturalWidth") == 64
    assert browser.execute_script("return [arguments[0].loop, arguments[0].muted, arguments[0].controls]",
                                  video) == [True, True, True]
    duration = browser.execute_script("return arguments[0].duration", video)
    assert duration == pytest.approx(FRAMES / FPS, abs=0.15)
    browser.execute_script("arguments[0].play();", video)
    _wait(browser, lambda d: d.execute_script("return arguments[0].currentTime", video) > 0.2)
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('#animatediff-txt2img-player a'))"
        ".map(function(a) { return [a.textContent, a.href, a.getAttribute('download')]; });")
    assert [(text, name) for text, _, name in links] == [("MP4", os.path.basename(paths["MP4"])),
                                                         ("GIF", os.path.basename(paths["GIF"]))]
    for _, href, _ in links:
        assert href.startswith(site.url + "file=/")
        assert urllib.request.urlopen(href).status == 200


def test_each_video_of_a_batch_gets_a_player_and_the_next_generation_replaces_them(browser, site):
    browser.get(site.url)
    first = [write_video(os.path.join(site.root, "outputs"), seed=s) for s in (2, 3)]
    _generate(browser, site, "task(two)", *first)
    _wait(browser, lambda d: _players(d) == 2)
    # a generation without MP4/WEBM (GIF only): the player goes, nothing replaces it
    _generate(browser, site, "task(gif)", write_video(os.path.join(site.root, "outputs"), seed=4, formats=("GIF",)))
    _wait(browser, lambda d: d.execute_script("return progressEnded") == 2)
    _wait(browser, lambda d: _players(d) == 0)


def test_a_task_still_running_when_its_bar_ends_is_asked_again(browser, site):
    browser.get(site.url)
    _generate(browser, site, "task(late)", write_video(os.path.join(site.root, "outputs"), seed=5), state="running")
    _wait(browser, lambda d: d.execute_script("return progressEnded") == 1)
    assert _players(browser) == 0
    site.states["task(late)"] = "done"
    _wait(browser, lambda d: _players(d) == 1, timeout=10)


def test_files_the_webui_would_not_serve_are_listed_without_a_player(browser, site, tmp_path):
    browser.get(site.url)
    paths = write_video(str(tmp_path / "elsewhere"), seed=6)  # outside the stand-in WebUI's folder
    _generate(browser, site, "task(outside)", paths)
    _wait(browser, lambda d: _players(d) == 1)
    panel = browser.execute_script("return document.getElementById('animatediff-txt2img-player')")
    assert browser.execute_script("return arguments[0].querySelectorAll('video, a').length", panel) == 0
    text = panel.text
    assert os.path.basename(paths["MP4"]) in text and "--gradio-allowed-path" in text


def test_names_are_text_never_markup(browser, site):
    browser.get(site.url)
    folder = os.path.join(site.root, "outputs")
    evil = {"MP4": os.path.join(folder, '<img src=x onerror="window.pwned=1">.mp4')}
    _generate(browser, site, "task(evil)", evil)
    _wait(browser, lambda d: _players(d) == 1)
    assert browser.execute_script("return window.pwned === undefined && "
                                  "document.querySelectorAll('#animatediff-txt2img-player img').length === 0")
