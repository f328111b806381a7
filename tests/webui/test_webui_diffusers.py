"""A motion module in diffusers' MotionAdapter layout through a real WebUI (skipped unless SD_WEBUI_URL is set).

The same random v2 weights are written twice, as AnimateDiff-Lightning ships each of its files: in
diffusers' layout (`*_diffusers.safetensors`, like the Hub's `diffusion_pytorch_model.safetensors`)
and in the official layout (`*_comfyui.safetensors`). Both are sampled as the Lightning model card
says: Euler, SGM Uniform schedule, CFG 1, as many steps as the model was distilled for.
"""

import json
import os
import re
import shutil

import numpy as np
import pytest
from test_webui_api import BASE, FRAMES, decode, gif_frames

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")

# A subfolder sorting after the suite's random_<kind> files, so that "first model" stays one of those.
SUBFOLDER = "zz_diffusers_layout"
LAYOUTS = {"diffusers": "diffusion_pytorch_model.safetensors",
           "official": "animatediff_lightning_random_comfyui.safetensors"}
LIGHTNING = {"steps": 4, "sampler_name": "Euler", "scheduler": "SGM Uniform", "cfg_scale": 1}


@pytest.fixture(scope="module")
def diffusers_modules(webui, motion_modules):
    """model name (relative to the motion-module folder) per layout; removed afterwards."""
    import torch
    from safetensors.torch import save_file

    from motion_module.synthetic import random_model, state_dict_for_file

    folder = os.path.join(motion_modules.folder, SUBFOLDER)
    os.makedirs(folder, exist_ok=True)
    model = random_model("v2", seed=21)
    for naming, name in (("diffusers", LAYOUTS["diffusers"]), ("animatediff", LAYOUTS["official"])):
        sd = state_dict_for_file(model, naming)
        save_file({k: v.to(torch.float16).contiguous() for k, v in sd.items()}, os.path.join(folder, name))
        del sd
    del model
    yield {layout: f"{SUBFOLDER}/{name}" for layout, name in LAYOUTS.items()}
    shutil.rmtree(folder, ignore_errors=True)


def test_both_layouts_are_listed_as_v2(webui, diffusers_modules):
    listed = {m["name"]: m for m in webui.get("/animatediff/v1/models").json()["models"]}
    for name in diffusers_modules.values():
        assert (listed[name]["kind"], listed[name]["max_frames"]) == ("v2", 32), listed[name]


def lightning_video(webui, model):
    payload = {**BASE, **LIGHTNING, "alwayson_scripts": {
        "AnimateDiff": {"args": [{"enable": True, "model": model, "video_length": FRAMES, "format": ["GIF"]}]}}}
    r = webui.post("/sdapi/v1/txt2img", json=payload)
    assert r.status_code == 200, r.text[:2000]
    out = r.json()
    assert len(out["images"]) == 1
    frames, _, _ = gif_frames(decode(out["images"][0]))
    return frames, json.loads(out["info"])["infotexts"][0]


def test_diffusers_and_official_layouts_give_the_same_lightning_video(webui, diffusers_modules):
    schedulers = webui.get("/sdapi/v1/schedulers")
    if schedulers.status_code != 200 or "SGM Uniform" not in {s["label"] for s in schedulers.json()}:
        pytest.skip("this WebUI has no SGM Uniform schedule type (added in v1.9)")
    videos = {}
    for layout, model in diffusers_modules.items():
        frames, infotext = lightning_video(webui, model)
        assert len(frames) == FRAMES
        for frame in frames:
            assert frame.shape == (64, 64, 3) and np.isfinite(frame).all()
        assert any(np.abs(frame - frames[0]).mean() > 0 for frame in frames[1:])  # a video, not one image
        assert 'AnimateDiff: "enable: True' in infotext and "schedule: linear 0.00085-0.012" in infotext
        assert "Schedule type: SGM Uniform" in infotext and re.search(r"CFG scale: 1(\.0)?,", infotext), infotext
        videos[layout] = frames
    # Same weights, same seed: the same frames.
    for a, b in zip(videos["diffusers"], videos["official"]):
        assert np.array_equal(a, b)
