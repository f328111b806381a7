"""The step cache (deepcache_*) in a real WebUI (skipped unless SD_WEBUI_URL is set).

Which steps were cached is read from GET /animatediff/v1/status
(`last_step_cache`), so every test knows the cache really ran. Speed is not
measured here (benchmarks/webui_speed.py does that).
"""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from test_webui_api import BASE, URL, gif_frames, plain_images, run

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")

STEPS = 6


def request(motion_modules, frames=8, **params):
    args = {"enable": True, "model": motion_modules["v2"], "video_length": frames, "format": ["GIF", "Frame"],
            **params}
    return {"steps": STEPS, "alwayson_scripts": {"AnimateDiff": {"args": [args]}}}


def frames_of(out, count):
    images = out["images"]
    assert len(images) >= 1 + count
    return np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(x))).convert("RGB"), dtype=np.float32)
                     for x in images[1:1 + count]])


def last_cache(webui):
    return webui.get("/animatediff/v1/status").json()["last_step_cache"]


def video(webui, motion_modules, frames=8, payload=None, **params):
    out = run(webui, **{**request(motion_modules, frames, **params), **(payload or {})})
    assert len(gif_frames(base64.b64decode(out["images"][0]))[0]) == frames
    return out


@pytest.fixture(scope="module")
def baseline(webui, motion_modules):
    return plain_images(webui)


def test_interval_one_is_bit_identical_to_no_caching(webui, motion_modules):
    exact = frames_of(video(webui, motion_modules), 8)
    same = frames_of(video(webui, motion_modules, deepcache_interval=1), 8)
    assert np.array_equal(exact, same)


def test_interval_three_caches_steps_and_stays_the_same_video(webui, motion_modules, baseline):
    exact = frames_of(video(webui, motion_modules), 8)
    out = video(webui, motion_modules, deepcache_interval=3)
    cached = frames_of(out, 8)
    counts = last_cache(webui)
    assert counts["full"] == 2 and counts["cached"] == 4, counts  # steps 0 and 3 in full
    assert counts["feature_mib"] > 0
    assert "deepcache_interval: 3" in out["info"]
    neighbour = frames_of(run(webui, **{**request(motion_modules), "seed": BASE["seed"] + 1}), 8)
    change, seed_change = np.abs(cached - exact).mean(), np.abs(neighbour - exact).mean()
    print(f"mean abs change: cached {change:.2f}, neighbouring seed {seed_change:.2f} (of 255)")
    assert 0 < change < 0.5 * seed_change
    assert plain_images(webui) == baseline


def test_moving_windows_and_separate_cond_uncond(webui, motion_modules, baseline):
    before = webui.options()["batch_cond_uncond"]
    try:
        for joint in (True, False):
            webui.set_options(batch_cond_uncond=joint)
            out = video(webui, motion_modules, frames=24, batch_size=16, overlap=4, deepcache_interval=3)
            assert np.isfinite(frames_of(out, 24)).all()
            counts = last_cache(webui)
            assert counts["cached"] > 0 and counts["full"] > 0, counts
    finally:
        webui.set_options(batch_cond_uncond=before)
    assert plain_images(webui) == baseline


@pytest.mark.parametrize("sampler", ["Heun", "DPM2", "DPM++ 2S a", "DDIM"])
def test_samplers_with_several_evaluations_per_step(webui, motion_modules, sampler):
    out = video(webui, motion_modules, payload={"sampler_name": sampler}, deepcache_interval=2)
    assert np.isfinite(frames_of(out, 8)).all()
    assert last_cache(webui)["cached"] > 0


def test_with_travel_lora_freeinit_and_hires_fix(webui, motion_modules, loras, baseline):
    lora = next(name for name, (what, _, _) in loras.items() if what == "motion")
    travel = f"0: a cat <lora:{lora}:0.8>\n4: a dog"
    out = video(webui, motion_modules, payload={"prompt": travel}, deepcache_interval=3)
    assert last_cache(webui)["cached"] > 0
    out = video(webui, motion_modules, deepcache_interval=3, freeinit_enable=True, freeinit_iters=2)
    counts = last_cache(webui)
    assert counts["full"] == 4 and counts["cached"] == 8, counts  # each iteration starts afresh
    out = video(webui, motion_modules, payload={"enable_hr": True, "hr_scale": 1.5, "hr_upscaler": "Latent",
                                                "denoising_strength": 0.6, "hr_second_pass_steps": STEPS},
                deepcache_interval=3)
    assert frames_of(out, 8).shape[1:3] == (96, 96)
    assert last_cache(webui)["cached"] > 0
    assert plain_images(webui) == baseline


def test_img2img_with_the_cache(webui, motion_modules):
    image = base64.b64encode(base64.b64decode(plain_images(webui)[0])).decode()
    out = run(webui, route="img2img", init_images=[image], denoising_strength=0.75,
              **request(motion_modules, deepcache_interval=2))
    assert np.isfinite(frames_of(out, 8)).all() and last_cache(webui)["cached"] > 0


@pytest.mark.parametrize("field,value", [("deepcache_interval", 0), ("deepcache_interval", -2),
                                         ("deepcache_interval", 2.5), ("deepcache_interval", 11),
                                         ("deepcache_depth", 11), ("deepcache_early", 1.5)])
def test_bad_values_are_refused_with_422(webui, motion_modules, baseline, field, value):
    params = {"deepcache_interval": 3, field: value}
    body = request(motion_modules, **params)
    out = run(webui, expect=422, **body)
    assert out["field"] == field, out
    assert plain_images(webui) == baseline


def test_v2v_with_controlnet(webui, motion_modules, controlnet, baseline, tmp_path):
    from test_webui_controlnet import _write_frames, unit

    folder = _write_frames(tmp_path / "frames", 12)
    body = request(motion_modules, frames=0, video_path=folder, deepcache_interval=3)
    body["alwayson_scripts"]["controlnet"] = {"args": [unit(controlnet)]}
    out = run(webui, **body)
    assert np.isfinite(frames_of(out, 12)).all()
    assert len(gif_frames(base64.b64decode(out["images"][0]))[0]) == 12
    assert last_cache(webui)["cached"] > 0
    assert plain_images(webui) == baseline
