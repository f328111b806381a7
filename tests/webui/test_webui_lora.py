"""Motion LoRAs, the v3 adapter and motion scale through a real WebUI
(skipped unless SD_WEBUI_URL is set).

Random files in both namings go into the WebUI's Lora folder (read from
/sdapi/v1/cmd-flags; this suite runs on the WebUI's machine). Their values are
fp16-exact, so the official fp32 pickle and its fp16 re-save hold the same
numbers and must give the same frames.
"""

import base64
import io
import json
import os

import numpy as np
import pytest
from PIL import Image
from test_webui_api import URL, gif_frames, run
from webui_loras import ADAPTER, ADAPTER_RESAVE, MOTION, MOTION_RESAVE

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")


def video(webui, motion_modules, prompt="a cat", kind="v2", **params):
    out = run(webui, prompt=prompt, alwayson_scripts={"AnimateDiff": {"args": [{
        "enable": True, "model": motion_modules[kind], "video_length": 8, "format": ["GIF"], **params}]}})
    data = base64.b64decode(out["images"][0])
    return data, gif_frames(data)[0], json.loads(out["info"])["infotexts"][0]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_motion_lora_changes_the_video_and_both_namings_agree(webui, motion_modules, loras):
    before, plain, _ = video(webui, motion_modules)
    _, official, infotext = video(webui, motion_modules, f"a cat <lora:{MOTION}:1>")
    _, resave, _ = video(webui, motion_modules, f"a cat <lora:{MOTION_RESAVE}:1>")
    assert not same(official, plain)
    assert same(official, resave)
    assert "Lora hashes" in infotext and MOTION in infotext  # the built-in's own infotext still works
    _, zero, _ = video(webui, motion_modules, f"a cat <lora:{MOTION}:0>")
    assert same(zero, plain)
    # Nothing stays on the cached motion module: the next run is byte-identical.
    after, _, _ = video(webui, motion_modules)
    assert after == before


def test_weight_scales_and_two_motion_loras_add_up(webui, motion_modules, loras):
    _, half, _ = video(webui, motion_modules, f"a cat <lora:{MOTION}:0.5>")
    _, full, _ = video(webui, motion_modules, f"a cat <lora:{MOTION}:1>")
    _, both, _ = video(webui, motion_modules, f"a cat <lora:{MOTION}:0.5> <lora:{MOTION_RESAVE}:0.5>")
    assert not same(half, full)
    # Half of one plus half of its twin is the whole update again (up to float rounding).
    def distance(x, y):
        return np.mean([np.abs(a - b).mean() for a, b in zip(x, y)])
    assert distance(both, full) < distance(half, full) / 10


def test_tag_in_a_travel_keyframe_line_is_honoured(webui, motion_modules, loras):
    travel = "0: a cat\n4: a dog"
    _, plain, _ = video(webui, motion_modules, travel)
    _, tagged, infotext = video(webui, motion_modules, f"0: a cat\n4: a dog <lora:{MOTION}:1>")
    assert not same(tagged, plain)
    assert infotext.startswith(f"0: a cat\n4: a dog <lora:{MOTION}:1>")


def test_v1_module_applies_what_matches(webui, motion_modules, loras):
    _, plain, _ = video(webui, motion_modules, kind="v1")
    _, tagged, _ = video(webui, motion_modules, f"a cat <lora:{MOTION}:1>", kind="v1")
    assert not same(tagged, plain)


def test_bad_motion_lora_tags_are_refused_with_422(webui, motion_modules, loras):
    r = webui.post("/sdapi/v1/txt2img", json={
        "prompt": f"a cat <lora:{MOTION}:0.5> <lora:{MOTION}:0.7>", "steps": 1, "width": 64, "height": 64,
        "alwayson_scripts": {"AnimateDiff": {"args": [{"enable": True, "model": motion_modules["v2"]}]}}})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "prompt" and "two weights" in r.json()["detail"]


def test_motion_lora_without_animatediff_changes_nothing(webui, loras):
    def pixels(prompt):
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(run(webui, prompt=prompt)["images"][0]))))
    assert np.array_equal(pixels(f"a cat <lora:{MOTION}:1>"), pixels("a cat"))


def test_v3_adapter_in_both_namings_changes_the_video_and_they_agree(webui, motion_modules, loras):
    before, plain, _ = video(webui, motion_modules, kind="v3")
    _, official, _ = video(webui, motion_modules, f"a cat <lora:{ADAPTER}:1>", kind="v3")
    _, resave, _ = video(webui, motion_modules, f"a cat <lora:{ADAPTER_RESAVE}:1>", kind="v3")
    assert not same(official, plain)
    assert same(official, resave)
    after, _, _ = video(webui, motion_modules, kind="v3")
    assert after == before


def test_motion_scale(webui, motion_modules):
    _, default, infotext = video(webui, motion_modules)
    _, one, one_info = video(webui, motion_modules, motion_scale=1.0)
    _, zero, _ = video(webui, motion_modules, motion_scale=0)
    _, half, half_info = video(webui, motion_modules, motion_scale=0.5)
    assert same(one, default) and "motion_scale" not in one_info
    assert not same(half, zero) and not same(half, default)
    assert "motion_scale: 0.5" in half_info
    r = webui.post("/sdapi/v1/txt2img", json={"prompt": "a cat", "steps": 1, "alwayson_scripts": {
        "AnimateDiff": {"args": [{"enable": True, "model": motion_modules["v2"], "motion_scale": 3}]}}})
    assert r.status_code == 422 and r.json()["field"] == "motion_scale"


@pytest.fixture
def lora_file(webui):
    """Write one more file into the WebUI's Lora folder for a test."""
    folder = webui.flags()["lora_dir"]
    written = []

    def write(name, data):
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        written.append(path)
        assert webui.post("/sdapi/v1/refresh-loras").status_code == 200

    yield folder, write
    for path in written:
        for moved in (path, path + ".corrupted"):  # Forge renames a file its loader cannot read
            if os.path.exists(moved):
                os.remove(moved)
    webui.post("/sdapi/v1/refresh-loras")


def test_unreadable_lora_file_is_left_out_by_the_built_in(webui, motion_modules, loras, lora_file):
    """A LoRA file cut off after its header cannot even be told to be a motion
    LoRA (safetensors checks that its data is all there): it is the built-in
    Lora extension's, which reports it in the log and goes on without it,
    as for any broken LoRA. The video is the one without the tag."""
    folder, write = lora_file
    with open(os.path.join(folder, MOTION_RESAVE + ".safetensors"), "rb") as f:
        data = f.read()
    header = 8 + int.from_bytes(data[:8], "little")
    write("adtest_cut_v2_lora.safetensors", data[:header + 100])
    _, plain, _ = video(webui, motion_modules)
    _, tagged, _ = video(webui, motion_modules, "a cat <lora:adtest_cut_v2_lora:1>")
    assert same(tagged, plain)


def test_incomplete_motion_lora_is_refused_with_422(webui, motion_modules, loras, lora_file):
    """A motion LoRA that reads but lacks one layer's up matrix is refused
    before the run, naming the prompt, the file and the layer."""
    from safetensors.torch import load_file, save_file

    folder, write = lora_file
    sd = load_file(os.path.join(folder, MOTION_RESAVE + ".safetensors"))
    dropped = next(k for k in sorted(sd) if "lora_up" in k)
    del sd[dropped]
    buffer = os.path.join(folder, "adtest_incomplete_v2_lora.tmp")
    save_file(sd, buffer)
    with open(buffer, "rb") as f:
        data = f.read()
    os.remove(buffer)
    write("adtest_incomplete_v2_lora.safetensors", data)
    before, _, _ = video(webui, motion_modules)
    r = webui.post("/sdapi/v1/txt2img", json={"prompt": "a cat <lora:adtest_incomplete_v2_lora:1>", "steps": 2,
                                              "width": 64, "height": 64, "alwayson_scripts": {"AnimateDiff": {
                                                  "args": [{"enable": True, "model": motion_modules["v2"]}]}}})
    assert r.status_code == 422, r.text[:500]
    detail = r.json()["detail"]
    assert r.json()["field"] == "prompt" and "adtest_incomplete_v2_lora" in detail and "incomplete" in detail
    after, _, _ = video(webui, motion_modules)
    assert after == before


def test_official_adapter_with_layers_the_checkpoint_lacks_is_not_applied(webui, motion_modules, loras, lora_file):
    """An official v3 adapter naming a layer this checkpoint does not have:
    on A1111 the adapter is left out as a whole (and the WebUI log says why),
    the run goes on as without it. Forge's built-in Lora applies the official
    file itself and, as for any LoRA, applies the layers that exist and lists
    the others in its log."""
    import torch

    from motion_module.synthetic import random_lora

    _, write = lora_file
    sd = random_lora("adapter", "official", rank=8, seed=3, std=0.01)
    for part in ("down", "up"):
        key = f"down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.{part}.weight"
        sd[key.replace("attentions.0", "attentions.5")] = sd[key].clone()
    buffer = io.BytesIO()
    torch.save(sd, buffer, _use_new_zipfile_serialization=False)
    write("adtest_v3_adapter_extra.ckpt", buffer.getvalue())
    _, plain, _ = video(webui, motion_modules, kind="v3")
    _, tagged, infotext = video(webui, motion_modules, "a cat <lora:adtest_v3_adapter_extra:1>", kind="v3")
    _, working, _ = video(webui, motion_modules, f"a cat <lora:{ADAPTER}:1>", kind="v3")
    assert not same(working, plain)
    assert not same(tagged, plain) if webui.forge else same(tagged, plain)
