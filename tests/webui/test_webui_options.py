"""FreeInit, the X/Y/Z plot, the LCM sampler, FP8 weights and the model cache
through a real WebUI (skipped unless SD_WEBUI_URL is set)."""

import base64
import glob
import io
import json
import os
import time

import numpy as np
import pytest
from PIL import Image
from test_webui_api import BASE, URL, gif_frames, plain_images, run

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")


def video(webui, motion_modules, payload=None, **params):
    start = time.perf_counter()
    out = run(webui, **(payload or {}), alwayson_scripts={"AnimateDiff": {"args": [{
        "enable": True, "model": motion_modules["v2"], "video_length": 8, "format": ["GIF"], **params}]}})
    elapsed = time.perf_counter() - start
    frames = gif_frames(base64.b64decode(out["images"][0]))[0]
    return frames, json.loads(out["info"])["infotexts"][0], elapsed


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# -- FreeInit -------------------------------------------------------------------

def test_freeinit_one_iteration_is_off_and_two_sample_twice(webui, motion_modules):
    steps = {"steps": 6}
    video(webui, motion_modules, steps)  # warm the module cache before timing
    off, _, t_off = video(webui, motion_modules, steps)
    one, info_one, _ = video(webui, motion_modules, steps, freeinit_enable=True, freeinit_iters=1)
    two, info_two, t_two = video(webui, motion_modules, steps, freeinit_enable=True, freeinit_iters=2)
    assert same(one, off)
    assert not same(two, off)
    assert "freeinit_enable: True" in info_two and "freeinit_iters: 2" in info_two
    assert "freeinit_iters: 1" in info_one and "freeinit" not in video(webui, motion_modules, steps)[1]
    # Two samplings; decoding and writing happen once.
    assert 1.4 < t_two / t_off < 2.6, (t_off, t_two)


@pytest.mark.parametrize("filter_name", ["gaussian", "box", "ideal"])
def test_freeinit_filters_and_fast_mode(webui, motion_modules, filter_name):
    off, _, _ = video(webui, motion_modules)
    frames, info, _ = video(webui, motion_modules, freeinit_enable=True, freeinit_iters=2,
                            freeinit_filter=filter_name, freeinit_fast=True, freeinit_ds=0.5)
    assert len(frames) == 8 and not same(frames, off)
    assert f"freeinit_filter: {filter_name}" in info and "freeinit_fast: True" in info


def test_freeinit_with_hires_fix_and_in_img2img(webui, motion_modules):
    hires = {"enable_hr": True, "hr_scale": 1.5, "hr_upscaler": "Latent", "denoising_strength": 0.6,
             "hr_second_pass_steps": 1}
    frames, info, _ = video(webui, motion_modules, hires, freeinit_enable=True, freeinit_iters=2)
    assert frames[0].shape[:2] == (96, 96) and "Hires upscale: 1.5" in info
    init = plain_images(webui)[0]
    out = run(webui, route="img2img", init_images=[init], denoising_strength=0.7, alwayson_scripts={
        "AnimateDiff": {"args": [{"enable": True, "model": motion_modules["v2"], "video_length": 8,
                                  "format": ["GIF"], "freeinit_enable": True, "freeinit_iters": 2}]}})
    assert len(gif_frames(base64.b64decode(out["images"][0]))[0]) == 8


@pytest.mark.parametrize("key,value", [("freeinit_iters", 6), ("freeinit_filter", "sinc"), ("freeinit_ds", 1.5)])
def test_bad_freeinit_values_are_refused(webui, motion_modules, key, value):
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "alwayson_scripts": {"AnimateDiff": {"args": [{
        "enable": True, "model": motion_modules["v2"], "freeinit_enable": True, key: value}]}}})
    assert r.status_code == 422 and r.json()["field"] == key


# -- X/Y/Z plot -----------------------------------------------------------------

def _gifs(webui):
    data_dir = webui.flags()["data_dir"]
    folder = os.path.join(data_dir, webui.options()["outdir_txt2img_samples"] or "outputs/txt2img-images")
    return set(glob.glob(os.path.join(folder, "AnimateDiff", "**", "*.gif"), recursive=True))


def test_xyz_grid_over_the_number_of_frames(webui, motion_modules):
    before = _gifs(webui)
    indexes = webui.get("/animatediff/v1/xyz").json()
    x_type = indexes["txt2img"]["[AnimateDiff] Number of frames"]
    assert "[AnimateDiff] Motion scale" in indexes["img2img"]
    out = run(webui, script_name="x/y/z plot",
              script_args=[x_type, "4, 8", [], 0, "", [], 0, "", [], True, True, False, False, False, False, False,
                           0, True],
              alwayson_scripts={"AnimateDiff": {"args": [{
                  "enable": True, "model": motion_modules["v2"], "format": ["GIF"]}]}})
    images = [Image.open(io.BytesIO(base64.b64decode(b))) for b in out["images"]]
    infotexts = json.loads(out["info"])["infotexts"]
    grid, cells = images[0], images[1:]
    # Each cell shows its video's first frame; the grid holds both side by side.
    assert [c.size for c in cells] == [(64, 64), (64, 64)]
    assert grid.size[0] >= 128
    assert "video_length: 4" in infotexts[1] and "video_length: 8" in infotexts[2]
    # Every cell wrote its whole video.
    written = sorted(_gifs(webui) - before)
    assert sorted(len(gif_frames(open(path, "rb").read())[0]) for path in written) == [4, 8]
    # The cells did not leak into one another, nor into the next request.
    frames, info, _ = video(webui, motion_modules, video_length=8)
    assert len(frames) == 8


def test_xyz_bad_axis_value_stops_the_grid_before_it_starts(webui, motion_modules):
    x_type = webui.get("/animatediff/v1/xyz").json()["txt2img"]["[AnimateDiff] Motion scale"]
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "script_name": "x/y/z plot", "script_args": [
        x_type, "0.5, 7", [], 0, "", [], 0, "", [], True, False, False, False, False, False, False, 0, True],
        "alwayson_scripts": {"AnimateDiff": {"args": [{"enable": True, "model": motion_modules["v2"]}]}}})
    assert r.status_code != 200 or not r.json()["images"]
    assert "motion_scale" in r.text


# -- samplers, precision, cache -------------------------------------------------

def test_lcm_sampler_is_the_webuis_own(webui):
    names = [s["name"] for s in webui.get("/sdapi/v1/samplers").json()]
    assert names.count("LCM") == 1  # v1.10 has one; ours is only added where it is missing


def test_animatelcm_with_the_lcm_sampler(webui, motion_modules):
    out = run(webui, sampler_name="LCM", cfg_scale=1.5, steps=4, alwayson_scripts={"AnimateDiff": {"args": [{
        "enable": True, "model": motion_modules["animatelcm"], "video_length": 8, "format": ["GIF"]}]}})
    info = json.loads(out["info"])["infotexts"][0]
    assert len(gif_frames(base64.b64decode(out["images"][0]))[0]) == 8
    assert "Sampler: LCM" in info and "schedule: linear 0.00085-0.012" in info  # AnimateLCM's own


def test_fp8_weights(webui, motion_modules):
    webui.skip_on_forge("Forge has no fp8_storage option; its 'Diffusion in Low Bits' reloads the model")
    before = webui.options()["fp8_storage"]
    plain, _, _ = video(webui, motion_modules)
    try:
        webui.set_options(fp8_storage="Enable")
        stored, info, _ = video(webui, motion_modules)
    finally:
        webui.set_options(fp8_storage=before)
    assert len(stored) == 8 and not same(stored, plain)  # computed from fp8-rounded weights
    assert not all(np.isnan(f).any() for f in stored)
    again, _, _ = video(webui, motion_modules)
    assert same(again, plain)


def test_unload_route(webui, motion_modules):
    video(webui, motion_modules)
    r = webui.post("/animatediff/v1/unload")
    assert r.status_code == 200 and r.json()["message"].startswith("Removed random_v2.safetensors")
    assert webui.post("/animatediff/v1/unload").json()["message"] == "No motion module is loaded."
    frames, _, _ = video(webui, motion_modules)  # loads it again
    assert len(frames) == 8


def test_forge_memory_manager_holds_the_module_while_cached(webui, motion_modules):
    """Forge: each sampling hands the motion module to Forge's memory manager
    (an extra model of the UNet's patcher), so Forge counts it and moves it;
    dropping it takes it off Forge's list first. A1111 has no such manager."""
    first, _, _ = video(webui, motion_modules)
    status = webui.get("/animatediff/v1/status").json()
    assert status["cached_module"] == "random_v2.safetensors"
    assert status["cached_module_managed_by_forge"] is webui.forge
    assert webui.post("/animatediff/v1/unload").status_code == 200
    status = webui.get("/animatediff/v1/status").json()
    assert status["cached_module"] is None and status["cached_module_managed_by_forge"] is False
    again, _, _ = video(webui, motion_modules)
    assert same(again, first)
    assert webui.get("/animatediff/v1/status").json()["cached_module_managed_by_forge"] is webui.forge


def test_cache_reloads_a_module_whose_file_changed(webui, motion_modules, tmp_path):
    from motion_module.synthetic import save_random_checkpoint

    path = os.path.join(motion_modules.folder, "cache_test.safetensors")
    try:
        save_random_checkpoint(path, "v2", seed=21)
        first, _, _ = video(webui, motion_modules, model="cache_test.safetensors")
        again, _, _ = video(webui, motion_modules, model="cache_test.safetensors")
        assert same(first, again)
        # Same name and size, new contents and modification time.
        os.replace(save_random_checkpoint(tmp_path / "next.safetensors", "v2", seed=22), path)
        changed, _, _ = video(webui, motion_modules, model="cache_test.safetensors")
        assert not same(changed, first)
    finally:
        if os.path.exists(path):
            os.remove(path)
