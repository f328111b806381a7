"""AnimateDiff-SDXL and HotShot-XL inside the WebUI (skipped unless SD_WEBUI_URL
is set and the WebUI has an SDXL checkpoint named SD_WEBUI_SDXL_CKPT, default
rand_sdxl_small: a random-weight SDXL with the real level layout; see
docs/testing.md, WebUI tests)."""

import base64
import io
import json
import os

import numpy as np
import pytest
from PIL import Image
from test_webui_api import URL, gif_frames, run
from webui_loras import ADAPTER, MOTION

from motion_module.synthetic import save_random_checkpoint

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")
CKPT = os.environ.get("SD_WEBUI_SDXL_CKPT", "rand_sdxl_small")


@pytest.fixture(scope="module")
def sdxl(webui, motion_modules):
    titles = [m["title"] for m in webui.get("/sdapi/v1/sd-models").json()]
    title = next((t for t in titles if t.startswith(CKPT)), None)
    if title is None:
        pytest.skip(f"no SDXL checkpoint {CKPT!r} in the WebUI")
    folder = motion_modules.folder
    names = {}
    for seed, kind in enumerate(("sdxl", "hotshot"), start=11):
        names[kind] = f"random_{kind}.safetensors"
        path = os.path.join(folder, names[kind])
        if not os.path.exists(path):
            save_random_checkpoint(path, kind, seed=seed)
    before = {key: webui.options()[key] for key in ("sd_model_checkpoint", "show_progress_type")}
    # Once for the module (loading SDXL on a CPU takes a while). "Approx NN" previews would make the
    # WebUI download its SDXL preview model, which an offline machine cannot.
    webui.set_options(sd_model_checkpoint=title, show_progress_type="Approx cheap")
    yield title, names
    webui.set_options(**before)


@pytest.mark.parametrize("kind,context", [("sdxl", 8), ("hotshot", 8)])
def test_sdxl_video(webui, sdxl, kind, context):
    title, names = sdxl
    out = run(webui, alwayson_scripts={"AnimateDiff": {"args": [{
        "enable": True, "model": names[kind], "video_length": 8, "batch_size": context, "format": ["GIF"]}]}})
    frames = gif_frames(base64.b64decode(out["images"][0]))[0]
    info = json.loads(out["info"])["infotexts"][0]
    assert len(frames) == 8 and frames[0].shape[:2] == (64, 64)
    assert f"model: {names[kind]}" in info and "Model: rand_sdxl" in info
    memory = webui.get("/sdapi/v1/memory").json()["ram"]
    print(f"\n{kind}: {memory.get('used', 0) / 2 ** 30:.1f} GiB of the machine's RAM in use after the run")


def test_motion_lora_on_an_sdxl_module_is_refused(webui, sdxl, loras):
    _, names = sdxl
    r = webui.post("/sdapi/v1/txt2img", json={"prompt": f"a cat <lora:{MOTION}:1>", "steps": 1,
                                              "width": 64, "height": 64, "alwayson_scripts": {"AnimateDiff": {
                                                  "args": [{"enable": True, "model": names["sdxl"]}]}}})
    assert r.status_code == 422 and r.json()["field"] == "prompt"
    assert "SD1.5 motion modules" in r.json()["detail"]


def test_sd15_module_on_sdxl_is_refused_naming_both(webui, sdxl, motion_modules):
    r = webui.post("/sdapi/v1/txt2img", json={"prompt": "a cat", "steps": 1, "width": 64, "height": 64,
                                              "alwayson_scripts": {"AnimateDiff": {"args": [{
                                                  "enable": True, "model": motion_modules["v2"]}]}}})
    assert r.status_code == 422 and r.json()["field"] == "model"
    assert "SD1.5 motion module" in r.json()["detail"] and "checkpoint is SDXL" in r.json()["detail"]


def test_v3_adapter_on_sdxl_is_left_out(webui, sdxl, loras):
    """The v3 adapter is made for SD1.5: on an SDXL checkpoint it is left out
    (the log says so) and the picture is the one without it."""
    payload = {"prompt": "a cat", "negative_prompt": "a dog", "steps": 1, "width": 64, "height": 64, "seed": 5}

    def pixels(prompt):
        r = webui.post("/sdapi/v1/txt2img", json={**payload, "prompt": prompt})
        assert r.status_code == 200, r.text[:500]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["images"][0]))))

    assert np.array_equal(pixels(f"a cat <lora:{ADAPTER}:1>"), pixels("a cat"))


def test_step_cache_on_sdxl_and_its_depth_limit(webui, sdxl):
    """SDXL has 9 input blocks, so the deepest cache depth is 7. Over the API
    a deeper one is refused before anything runs; as an X/Y/Z plot value,
    before the grid starts (the plot would turn a cell's error into an empty
    cell), with the same 422 and message."""
    _, names = sdxl

    def body(**ad):
        return {"prompt": "a cat", "steps": 4, "width": 64, "height": 64, "seed": 5, "sampler_name": "Euler",
                "alwayson_scripts": {"AnimateDiff": {"args": [{"enable": True, "model": names["sdxl"],
                                                               "video_length": 8, "format": ["GIF"], **ad}]}}}

    out = run(webui, **body(deepcache_interval=2, deepcache_depth=7))
    assert len(gif_frames(base64.b64decode(out["images"][0]))[0]) == 8
    cache = webui.get("/animatediff/v1/status").json()["last_step_cache"]
    assert cache["full"] > 0 and cache["cached"] > 0, cache
    r = webui.post("/sdapi/v1/txt2img", json=body(deepcache_interval=2, deepcache_depth=8))
    assert r.status_code == 422 and r.json()["field"] == "deepcache_depth", r.text[:500]
    assert "between 0 and 7 for an SDXL checkpoint" in r.json()["detail"]
    axes = webui.get("/animatediff/v1/xyz").json()["txt2img"]
    depth_axis = next(index for label, index in axes.items() if "depth" in label.lower())
    r = webui.post("/sdapi/v1/txt2img", json={**body(deepcache_interval=2), "script_name": "x/y/z plot",
                                              "script_args": [depth_axis, "8", [], 0, "", [], 0, "", [], True, False,
                                                              False, False, False, False, False, 0, True]})
    assert r.status_code == 422, r.text[:500]
    assert "between 0 and 7 for an SDXL checkpoint, got 8" in r.json()["detail"] and "images" not in r.json()
