"""AnimateDiff-SDXL and HotShot-XL inside the WebUI (skipped unless SD_WEBUI_URL
is set and the WebUI has an SDXL checkpoint named SD_WEBUI_SDXL_CKPT, default
rand_sdxl_small: a random-weight SDXL with the real level layout; see
README, Development)."""

import base64
import json
import os

import pytest
from test_webui_api import URL, gif_frames, run

from motion_module.synthetic import save_random_checkpoint

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")
CKPT = os.environ.get("SD_WEBUI_SDXL_CKPT", "rand_sdxl_small")


@pytest.fixture(scope="module")
def sdxl(webui, motion_modules):
    titles = [m["title"] for m in webui.get("/sdapi/v1/sd-models").json()]
    title = next((t for t in titles if t.startswith(CKPT)), None)
    if title is None:
        pytest.skip(f"no SDXL checkpoint {CKPT!r} in the WebUI")
    folder = webui.options()["animatediff_model_path"]
    names = {}
    for seed, kind in enumerate(("sdxl", "hotshot"), start=11):
        names[kind] = f"random_{kind}.safetensors"
        path = os.path.join(folder, names[kind])
        if not os.path.exists(path):
            save_random_checkpoint(path, kind, seed=seed)
    return title, names


@pytest.mark.parametrize("kind,context", [("sdxl", 8), ("hotshot", 8)])
def test_sdxl_video(webui, sdxl, kind, context):
    title, names = sdxl
    out = run(webui, override_settings={"sd_model_checkpoint": title}, alwayson_scripts={"AnimateDiff": {"args": [{
        "enable": True, "model": names[kind], "video_length": 8, "batch_size": context, "format": ["GIF"]}]}})
    frames = gif_frames(base64.b64decode(out["images"][0]))[0]
    info = json.loads(out["info"])["infotexts"][0]
    assert len(frames) == 8 and frames[0].shape[:2] == (64, 64)
    assert f"model: {names[kind]}" in info and "Model: rand_sdxl" in info
    memory = webui.get("/sdapi/v1/memory").json()["ram"]
    print(f"\n{kind}: WebUI process RAM after the run: {memory.get('used', 0) / 2 ** 30:.1f} GiB used on the machine")


def test_sd15_module_on_sdxl_is_refused_naming_both(webui, sdxl, motion_modules):
    title, _ = sdxl
    r = webui.post("/sdapi/v1/txt2img", json={"prompt": "a cat", "steps": 1, "width": 64, "height": 64,
                                              "override_settings": {"sd_model_checkpoint": title},
                                              "alwayson_scripts": {"AnimateDiff": {"args": [{
                                                  "enable": True, "model": motion_modules["v2"]}]}}})
    assert r.status_code != 200 or not r.json().get("images")
    assert "SDXL" in r.text
