"""--lowvram / --medvram code paths (skipped unless the WebUI at SD_WEBUI_URL
was started with one of them; on a CPU the WebUI runs the same hooks with the
CPU as its device)."""

import base64

import pytest
from test_webui_api import BASE, URL, gif_frames, plain_images, run

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")


@pytest.fixture(scope="module")
def low_vram_flag(webui):
    flags = webui.flags()
    flag = "lowvram" if flags.get("lowvram") else "medvram" if flags.get("medvram") else None
    if flag is None:
        pytest.skip("the WebUI was started without --lowvram or --medvram")
    return flag


@pytest.mark.parametrize("kind,extra", [("v2", {}), ("v1", {}), ("v3", {"video_length": 20, "batch_size": 8}),
                                        ("v2", {"freeinit_enable": True, "freeinit_iters": 2})])
def test_video_and_the_plain_image_after_it(webui, motion_modules, low_vram_flag, kind, extra):
    before = plain_images(webui)
    args = {"enable": True, "model": motion_modules[kind], "video_length": 8, "format": ["GIF"], **extra}
    out = run(webui, alwayson_scripts={"AnimateDiff": {"args": [args]}})
    assert len(gif_frames(base64.b64decode(out["images"][0]))[0]) == args["video_length"]
    assert plain_images(webui) == before


def test_hires_fix(webui, motion_modules, low_vram_flag):
    out = run(webui, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.6,
              hr_second_pass_steps=1, alwayson_scripts={"AnimateDiff": {"args": [{
                  "enable": True, "model": motion_modules["v2"], "video_length": 8, "format": ["GIF"]}]}})
    assert gif_frames(base64.b64decode(out["images"][0]))[0][0].shape[:2] == (96, 96)
    assert BASE["width"] == 64
