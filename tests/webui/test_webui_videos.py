"""Several videos per batch (videos_per_batch) through a real WebUI (skipped unless SD_WEBUI_URL is set).

A request with videos_per_batch 2 must answer two videos, each the one a
request for a single video with that video's seed (seed + k × frames, what
batch count would give it) answers: compared frame by frame on the returned
frames (format Frame), with the largest pixel difference printed.
"""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from test_webui_api import BASE, URL, decode, gif_frames, run

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")

FRAMES = 8


def same_global_generator(webui):
    """img2img encodes each init image with noise from torch's global generator, which the previous request
    left where its last seed put it. A plain txt2img with one seed puts it in the same place before each of
    the compared requests."""
    run(webui, seed=4242)


def request(webui, motion_modules, videos=1, seed=BASE["seed"], route="txt2img", payload=None, **params):
    if route == "img2img":
        same_global_generator(webui)
    out = run(webui, route=route, seed=seed, **(payload or {}), alwayson_scripts={"AnimateDiff": {"args": [{
        "enable": True, "model": motion_modules["v2"], "video_length": FRAMES, "format": ["GIF", "Frame"],
        "videos_per_batch": videos, **params}]}})
    return out, json.loads(out["info"])


def split(out, videos, frames):
    """(frames of each GIF, returned frames of each video): each video's GIF comes first, then every video's
    frames."""
    images = out["images"]
    assert len(images) == videos + videos * frames, len(images)
    gifs = [gif_frames(decode(x))[0] for x in images[:videos]]
    pngs = [np.asarray(Image.open(io.BytesIO(decode(x))).convert("RGB"), dtype=np.float32) for x in images[videos:]]
    return gifs, [pngs[k * frames:(k + 1) * frames] for k in range(videos)]


def max_diff(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def check_each_video_is_its_single_run(webui, motion_modules, frames=FRAMES, route="txt2img", payload=None,
                                       **params):
    out, info = request(webui, motion_modules, videos=2, route=route, payload=payload, video_length=frames,
                        **params)
    gifs, videos = split(out, 2, frames)
    assert [len(g) for g in gifs] == [frames, frames]
    assert len(info["all_seeds"]) == 2 * frames
    diffs = []
    for k in range(2):
        seed = BASE["seed"] + k * frames  # what batch count gives its k-th run
        text = info["infotexts"][k]
        assert f"Seed: {seed}," in text and "videos_per_batch: 2" in text, text
        assert all(t == text for t in info["infotexts"][2 + k * frames:2 + (k + 1) * frames])  # its frames
        single_out, single_info = request(webui, motion_modules, videos=1, seed=seed, route=route, payload=payload,
                                          video_length=frames, **params)
        _, (single,) = split(single_out, 1, frames)
        assert f"Seed: {seed}," in single_info["infotexts"][0]
        assert "videos_per_batch" not in single_info["infotexts"][0]
        diffs.append(max_diff(videos[k], single))
    between = float(np.mean([np.abs(x - y).mean() for x, y in zip(*videos)]))
    print(f"videos_per_batch 2 {params or ''}: max pixel diff to the single runs {diffs}, mean diff between "
          f"the two videos {between:.1f}")
    assert max(diffs) == 0, diffs  # the same frames to the pixel
    assert between > 1.0  # two videos, not one twice
    return videos


def test_two_videos_per_batch_are_the_single_runs_with_their_seeds(webui, motion_modules):
    check_each_video_is_its_single_run(webui, motion_modules)


def test_batch_count_and_videos_per_batch_together(webui, motion_modules):
    out, info = request(webui, motion_modules, videos=2, payload={"n_iter": 2}, format=["GIF"])
    assert len(out["images"]) == 4 and len(info["all_seeds"]) == 4 * FRAMES
    for j, gif in enumerate(out["images"]):
        assert len(gif_frames(decode(gif))[0]) == FRAMES
        assert f"Seed: {BASE['seed'] + j * FRAMES}," in info["infotexts"][j]
    # The 4th video of 2 batches x 2 videos is the 4th video of batch count 4.
    alone, alone_info = request(webui, motion_modules, videos=1, payload={"n_iter": 4}, format=["GIF"])
    assert alone_info["all_seeds"] == info["all_seeds"]
    last = gif_frames(decode(out["images"][3]))[0]
    assert max_diff(last, gif_frames(decode(alone["images"][3]))[0]) == 0


def test_prompt_travel_and_context_windows_in_every_video(webui, motion_modules):
    check_each_video_is_its_single_run(webui, motion_modules, frames=12, batch_size=8, closed_loop="R+P",
                                       payload={"prompt": "0: a cat\n6: a dog"})


def test_freenoise_and_freeinit_per_video(webui, motion_modules):
    check_each_video_is_its_single_run(webui, motion_modules, frames=12, batch_size=8, freenoise=True,
                                       freeinit_enable=True, freeinit_iters=2)


def test_img2img_every_video_from_the_init_image(webui, motion_modules):
    init = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8"))
    buf = io.BytesIO()
    init.save(buf, format="PNG")
    payload = {"init_images": [base64.b64encode(buf.getvalue()).decode()], "denoising_strength": 0.75}
    check_each_video_is_its_single_run(webui, motion_modules, route="img2img", payload=payload, latent_power=1.5,
                                       latent_scale=16)


def test_controlnet_v2v_controls_every_video_with_the_same_frames(webui, motion_modules, controlnet, tmp_path):
    from test_webui_controlnet import _write_frames, unit

    folder = _write_frames(tmp_path / "a", 12)
    units = {"controlnet": {"args": [unit(controlnet)]}}
    out = run(webui, alwayson_scripts={**units, "AnimateDiff": {"args": [{
        "enable": True, "model": motion_modules["v2"], "video_length": 12, "batch_size": 8, "video_path": folder,
        "format": ["GIF", "Frame"], "videos_per_batch": 2}]}})
    _, videos = split(out, 2, 12)
    diffs = []
    for k in range(2):
        single = run(webui, seed=BASE["seed"] + k * 12, alwayson_scripts={**units, "AnimateDiff": {"args": [{
            "enable": True, "model": motion_modules["v2"], "video_length": 12, "batch_size": 8,
            "video_path": folder, "format": ["GIF", "Frame"]}]}})
        diffs.append(max_diff(videos[k], split(single, 1, 12)[1][0]))
    print("ControlNet V2V, videos_per_batch 2: max pixel diff to the single runs", diffs)
    assert max(diffs) == 0, diffs  # the same frames to the pixel


@pytest.mark.parametrize("bad", [0, -1, 2.5, 99])
def test_bad_videos_per_batch_is_refused_naming_the_field(webui, motion_modules, bad):
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "alwayson_scripts": {"AnimateDiff": {"args": [{
        "enable": True, "model": motion_modules["v2"], "video_length": FRAMES, "videos_per_batch": bad}]}}})
    assert r.status_code == 422, r.text[:500]
    assert r.json()["field"] == "videos_per_batch"
