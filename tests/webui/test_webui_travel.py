"""Prompt travel and FreeNoise through a real WebUI (skipped unless SD_WEBUI_URL is set)."""

import json

import numpy as np
import pytest
from test_webui_api import BASE, URL, decode, gif_frames, plain_images, run

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")

TRAVEL = "0: a cat\n8: a dog"


def video(webui, motion_modules, prompt, frames=16, **params):
    out = run(webui, prompt=prompt, alwayson_scripts={"AnimateDiff": {"args": [{
        "enable": True, "model": motion_modules["v2"], "video_length": frames, "format": ["GIF"], **params}]}})
    gif, _, info = gif_frames(decode(out["images"][0]))
    return gif, json.loads(out["info"])["infotexts"][0], info


def test_travel_returns_every_frame_and_keeps_the_prompt(webui, motion_modules):
    frames, infotext, gif_info = video(webui, motion_modules, TRAVEL)
    assert len(frames) == 16
    assert infotext.startswith(TRAVEL + "\n")  # the user's multi-line prompt, not a frame's
    assert gif_info["comment"].decode("utf-8").startswith(TRAVEL + "\n")
    assert "prompt_interp" not in infotext  # slerp, the default, is not written
    # the second half is the dog's: it differs from an all-cat video more than the first half does
    cats, _, _ = video(webui, motion_modules, "a cat")
    first = np.mean([np.abs(frames[i] - cats[i]).mean() for i in range(4)])
    last = np.mean([np.abs(frames[i] - cats[i]).mean() for i in range(12, 16)])
    assert last > first


def test_single_keyframe_equals_the_plain_prompt(webui, motion_modules):
    travel, _, _ = video(webui, motion_modules, "0: a cat", frames=8)
    plain, _, _ = video(webui, motion_modules, "a cat", frames=8)
    assert all(np.array_equal(a, b) for a, b in zip(travel, plain))


def test_lerp_on_request_and_in_the_infotext(webui, motion_modules):
    slerped, _, _ = video(webui, motion_modules, TRAVEL)
    lerped, infotext, _ = video(webui, motion_modules, TRAVEL, prompt_interp="lerp")
    assert "prompt_interp: lerp" in infotext
    assert any(not np.array_equal(a, b) for a, b in zip(slerped, lerped))


def test_long_video_with_closed_loop_travel_and_freenoise(webui, motion_modules):
    frames, infotext, _ = video(webui, motion_modules, "0: a cat\n16: a dog", frames=32, batch_size=16,
                                closed_loop="R+P")
    assert len(frames) == 32 and "closed_loop: R+P" in infotext
    noisy, infotext, _ = video(webui, motion_modules, "0: a cat\n16: a dog", frames=32, batch_size=16,
                               closed_loop="R+P", freenoise=True)
    assert len(noisy) == 32 and "freenoise: True" in infotext
    assert any(not np.array_equal(a, b) for a, b in zip(frames[16:], noisy[16:]))


@pytest.mark.parametrize("prompt, words", [("0: a cat\n16: a dog", "keyframe 16"),
                                           ("0: a cat\n0: a dog", "appears twice"),
                                           ("0: a cat\n4:", "no text")])
def test_bad_travel_is_refused_naming_the_line(webui, motion_modules, prompt, words):
    baseline = plain_images(webui)
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "prompt": prompt, "alwayson_scripts": {"AnimateDiff": {
        "args": [{"enable": True, "model": motion_modules["v2"], "video_length": 16}]}}})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "prompt" and words in r.json()["detail"] and "line 2" in r.json()["detail"]
    assert plain_images(webui) == baseline


def _travel_differs_from_plain(webui, motion_modules, **payload):
    """(travel frames, its infotexts, plain frames) for one request shape, 8 frames."""
    def once(prompt):
        out = run(webui, prompt=prompt, **payload, alwayson_scripts={"AnimateDiff": {"args": [{
            "enable": True, "model": motion_modules["v2"], "video_length": 8, "format": ["GIF"]}]}})
        videos = [gif_frames(decode(image))[0] for image in out["images"]]
        return videos, json.loads(out["info"])["infotexts"]

    travel, infotexts = once("0: a cat\n4: a dog")
    plain, _ = once("a cat")
    return travel, infotexts, plain


def test_travel_with_hires_fix(webui, motion_modules):
    travel, infotexts, plain = _travel_differs_from_plain(
        webui, motion_modules, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=1,
        denoising_strength=0.5)
    assert len(travel[0]) == 8 and travel[0][0].shape == (96, 96, 3)
    assert infotexts[0].startswith("0: a cat\n4: a dog\n")
    assert np.abs(travel[0][7] - plain[0][7]).mean() > np.abs(travel[0][0] - plain[0][0]).mean()


def test_travel_in_img2img(webui, motion_modules):
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")).save(buf, format="PNG")
    travel, infotexts, plain = _travel_differs_from_plain(
        webui, motion_modules, route="img2img", init_images=[base64.b64encode(buf.getvalue()).decode()],
        denoising_strength=0.9)
    assert len(travel[0]) == 8 and infotexts[0].startswith("0: a cat\n4: a dog\n")
    assert any(not np.array_equal(a, b) for a, b in zip(travel[0], plain[0]))


def test_travel_with_batch_count(webui, motion_modules):
    travel, infotexts, _ = _travel_differs_from_plain(webui, motion_modules, n_iter=2)
    assert len(travel) == 2 and all(len(v) == 8 for v in travel)
    assert all(text.startswith("0: a cat\n4: a dog\n") for text in infotexts)
