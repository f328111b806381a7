"""Video-to-video with a real ControlNet in a real WebUI: sd-webui-controlnet
(v1.1.455) on A1111, the built-in sd_forge_controlnet on Forge.

Skipped unless SD_WEBUI_URL is set. The tests that take the `controlnet`
fixture are skipped unless the WebUI lists the ControlNet model named by
SD_WEBUI_CONTROLNET_MODEL (default control_v11p_sd15_rand: a
random-weight ControlNet v1.1 SD1.5 model, built by make_controlnet_model.py
with its zero convolutions re-randomised so that the hint acts). Preprocessor
"none" ("None" on Forge) passes the control frames through unchanged.

The WebUI must run on this machine: the tests write frame folders and videos
into temporary folders and send their paths.
"""

import base64
import io
import json
import os
import uuid

import numpy as np
import pytest
import requests
from PIL import Image

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
BASE = {"prompt": "a cat", "negative_prompt": "a dog", "steps": 2, "width": 64, "height": 64,
        "seed": 1234, "sampler_name": "Euler", "cfg_scale": 7}

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")


def _pattern(i, size=64):
    """Frame i: stripes whose direction and phase depend on i (distinct hints)."""
    y, x = np.mgrid[0:size, 0:size]
    angle = i * 0.7
    wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) / 3.0 + i)
    gray = ((wave > 0) * 255).astype(np.uint8)
    return np.stack([gray, np.roll(gray, i, axis=0), 255 - gray], axis=-1)


def _write_frames(folder, count, changed=None):
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        frame = _pattern(i)
        if i == changed:
            frame = 255 - frame
        Image.fromarray(frame).save(os.path.join(folder, f"frame{i}.png"))
    return str(folder)


def unit(controlnet, **fields):
    return {"enabled": True, "module": controlnet["module"], "model": controlnet["model"], "weight": 2.0,
            "save_detected_map": False, **fields}


def own_folder(webui, controlnet, folder, **fields):
    """A unit reading its own frames folder, in the fields of this WebUI's ControlNet."""
    batch = {"batch_image_dir": folder} if webui.forge else {"batch_images": folder}
    return unit(controlnet, input_mode="batch", **batch, **fields)


def txt2img(webui, ad_args, units=(), expect=200, **payload):
    scripts = {"AnimateDiff": {"args": [{"enable": True, **ad_args}]}}
    if units:
        scripts["controlnet"] = {"args": list(units)}
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, **payload, "alwayson_scripts": scripts})
    assert r.status_code == expect, r.text[:2000]
    return r.json()


def frames_of(out, count):
    """The frames returned after the video (format 'Frame')."""
    images = out["images"]
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(x))).convert("RGB"), dtype=np.float32)
            for x in images[1:1 + count]]


def gif_frame_count(out):
    return Image.open(io.BytesIO(base64.b64decode(out["images"][0]))).n_frames


def plain(webui):
    r = webui.post("/sdapi/v1/txt2img", json=BASE)
    assert r.status_code == 200, r.text
    return r.json()["images"]


@pytest.fixture(scope="module")
def before(webui, motion_modules, controlnet):
    return plain(webui)


def test_video_path_controls_frame_by_frame(webui, motion_modules, controlnet, before, tmp_path):
    folder = _write_frames(tmp_path / "a", 12)
    changed = _write_frames(tmp_path / "b", 12, changed=5)
    ad_args = {"model": motion_modules["v2"], "video_length": 0, "format": ["GIF", "Frame"]}
    first = txt2img(webui, {**ad_args, "video_path": folder}, [unit(controlnet)])
    second = txt2img(webui, {**ad_args, "video_path": changed}, [unit(controlnet)])
    assert gif_frame_count(first) == 12 and len(first["images"]) == 13
    a, b = frames_of(first, 12), frames_of(second, 12)
    diffs = [float(np.abs(x - y).mean()) for x, y in zip(a, b)]
    print("per-frame change when only control frame 5 changes:", [round(d, 2) for d in diffs])
    assert np.argmax(diffs) == 5 and diffs[5] > 2 * sorted(diffs)[-2], diffs
    # Without ControlNet the same seed gives another video: the hints acted.
    free = txt2img(webui, {**ad_args, "video_length": 12, "format": ["GIF", "Frame"]})
    assert np.mean([np.abs(x - y).mean() for x, y in zip(a, frames_of(free, 12))]) > 1.0


def test_a_frames_folder_sets_the_frame_count_with_or_without_controlnet(webui, motion_modules, tmp_path):
    folder = _write_frames(tmp_path / "a", 10)
    out = txt2img(webui, {"model": motion_modules["v2"], "video_length": 0, "video_path": folder, "format": ["GIF"]})
    assert gif_frame_count(out) == 10


def test_detected_maps_are_not_video_frames(webui, motion_modules, controlnet, tmp_path):
    folder = _write_frames(tmp_path / "a", 8)
    out = txt2img(webui, {"model": motion_modules["v2"], "video_path": folder, "format": ["GIF"]},
                  [unit(controlnet, save_detected_map=True)])
    assert gif_frame_count(out) == 8
    # One video, then ControlNet's maps as ControlNet returns them (one per frame).
    assert len(out["images"]) == 1 + 8


def test_the_shortest_folder_caps_the_frames(webui, motion_modules, controlnet, tmp_path):
    video = _write_frames(tmp_path / "video", 12)
    own = _write_frames(tmp_path / "own", 9)
    out = txt2img(webui, {"model": motion_modules["v2"], "video_path": video, "format": ["GIF"]},
                  [unit(controlnet), own_folder(webui, controlnet, own)])
    assert gif_frame_count(out) == 9


def test_controlnet_keyframes_place_images_on_their_frames(webui, motion_modules, controlnet, tmp_path):
    # ControlNet's own `keyframe:` line: two images for frames 0 and 7, then 0 and 4; no cap to 2 frames.
    webui.skip_on_forge("Forge's built-in ControlNet reads a folder, with no `keyframe:` lines")
    keys = _write_frames(tmp_path / "keys", 2)
    ad_args = {"model": motion_modules["v2"], "video_length": 8, "format": ["GIF", "Frame"]}
    runs = [frames_of(txt2img(webui, ad_args, [unit(controlnet, input_mode="batch",
                                                      batch_images=f"{keys}\nkeyframe:0,{k}")]), 8) for k in (7, 4)]
    assert len(runs[0]) == len(runs[1]) == 8
    diffs = [float(np.abs(x - y).mean()) for x, y in zip(*runs)]
    print("keyframe 7 -> 4, per-frame change:", [round(d, 2) for d in diffs])
    assert set(np.argsort(diffs)[-2:]) == {4, 7} and diffs[0] < min(diffs[4], diffs[7]), diffs


def test_sparsectrl_runs_with_this_extensions_temporal_layers(webui, motion_modules, controlnet, before, tmp_path):
    webui.skip_on_forge("Forge's built-in ControlNet has no SparseCtrl (no file of it names SparseCtrl or AnimateDiff)")
    models = webui.get("/controlnet/model_list", params={"update": "true"}).json().get("model_list", [])
    sparse = [m for m in models if m.startswith("sparsectrl_rgb_sd15_rand")]
    if not sparse:
        pytest.skip("no sparsectrl_rgb_sd15_rand model (make_controlnet_model.py ... sparsectrl)")
    keys = _write_frames(tmp_path / "keys", 2)
    ad_args = {"model": motion_modules["v3"], "video_length": 8, "format": ["GIF", "Frame"]}
    sparse_unit = unit(controlnet, model=sparse[0], weight=1.0, input_mode="batch",
                       batch_images=f"{keys}\nkeyframe:0,7")
    with_sparse = frames_of(txt2img(webui, ad_args, [sparse_unit]), 8)
    without = frames_of(txt2img(webui, ad_args), 8)
    assert len(with_sparse) == 8 and all(np.isfinite(f).all() for f in with_sparse)
    assert np.mean([np.abs(x - y).mean() for x, y in zip(with_sparse, without)]) > 0.5
    # The same control with AnimateDiff off cannot run SparseCtrl's temporal layers: a clear error, no crash.
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "alwayson_scripts": {"controlnet": {"args": [sparse_unit]}}})
    assert r.status_code in (200, 500)
    assert plain(webui) == before


@pytest.mark.parametrize("batch_cond_uncond", [True, False])
def test_long_video_in_context_windows(webui, motion_modules, controlnet, tmp_path, batch_cond_uncond):
    folder = _write_frames(tmp_path / "a", 24)
    saved = webui.options().get("batch_cond_uncond", True)
    try:
        webui.set_options(batch_cond_uncond=batch_cond_uncond)
        out = txt2img(webui, {"model": motion_modules["v2"], "video_path": folder, "batch_size": 16,
                              "format": ["GIF", "Frame"]}, [unit(controlnet)])
    finally:
        webui.set_options(batch_cond_uncond=saved)
    frames = frames_of(out, 24)
    assert len(frames) == 24 and all(np.isfinite(f).all() and f.std() > 0 for f in frames)


def test_hires_fix_with_controlnet(webui, motion_modules, controlnet, tmp_path):
    folder = _write_frames(tmp_path / "a", 8)
    out = txt2img(webui, {"model": motion_modules["v2"], "video_path": folder, "format": ["GIF", "Frame"]},
                  [unit(controlnet)], enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=1,
                  denoising_strength=0.6)
    frames = frames_of(out, 8)
    assert len(frames) == 8 and frames[0].shape == (96, 96, 3)


def test_a_single_image_unit_controls_every_frame(webui, motion_modules, controlnet):
    buffer = io.BytesIO()
    Image.fromarray(_pattern(3)).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    ad_args = {"model": motion_modules["v2"], "video_length": 8, "format": ["GIF", "Frame"]}
    with_image = frames_of(txt2img(webui, ad_args, [unit(controlnet, image=image)]), 8)
    without = frames_of(txt2img(webui, ad_args), 8)
    assert len(with_image) == 8
    assert all(np.abs(x - y).mean() > 0.5 for x, y in zip(with_image, without))


def _write_video(path, count):
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), (64, 64), fps=10, codec="libx264", pix_fmt_out="yuv444p",
                                         output_params=["-crf", "0"])
    writer.send(None)
    for i in range(count):
        writer.send(_pattern(i).tobytes())
    writer.close()
    return str(path)


def test_video_source_file_and_base64_are_decoded_and_removed(webui, motion_modules, controlnet, tmp_path):
    video = _write_video(tmp_path / "clip.mp4", 10)
    work = os.path.join(webui.flags()["data_dir"], "tmp", "animatediff-frames")
    ad_args = {"model": motion_modules["v2"], "video_length": 0, "format": ["GIF"]}
    by_path = txt2img(webui, {**ad_args, "video_source": video}, [unit(controlnet)])
    with open(video, "rb") as f:
        encoded = base64.b64encode(f.read()).decode()
    by_data = txt2img(webui, {**ad_args, "video_source": encoded}, [unit(controlnet)])
    assert gif_frame_count(by_path) == gif_frame_count(by_data) == 10
    assert by_path["images"][0] == by_data["images"][0]
    assert not os.path.isdir(work) or os.listdir(work) == []


def test_interrupted_v2v_removes_its_frames_and_leaves_no_trace(webui, motion_modules, controlnet, before, tmp_path):
    import threading
    import time

    video = _write_video(tmp_path / "clip.mp4", 8)
    work = os.path.join(webui.flags()["data_dir"], "tmp", "animatediff-frames")
    result = {}

    def long_run():
        result["response"] = webui.post("/sdapi/v1/txt2img", json={**BASE, "steps": 30, "alwayson_scripts": {
            "AnimateDiff": {"args": [{"enable": True, "model": motion_modules["v2"], "video_source": video}]},
            "controlnet": {"args": [unit(controlnet)]}}})

    worker = threading.Thread(target=long_run)
    worker.start()
    seen_frames, deadline = False, time.time() + 300
    while time.time() < deadline:  # wait until sampling has started
        seen_frames = seen_frames or bool(os.path.isdir(work) and os.listdir(work))
        if webui.get("/sdapi/v1/progress?skip_current_image=true").json().get("state", {}).get("sampling_step", 0):
            break
        time.sleep(0.3)
    assert seen_frames or (os.path.isdir(work) and os.listdir(work))  # the decoded frames were there
    webui.post("/sdapi/v1/interrupt")
    worker.join(timeout=600)
    assert result["response"].status_code == 200
    assert not os.listdir(work)
    assert plain(webui) == before


@pytest.mark.parametrize("ad_args, field", [
    ({"video_path": "/nonexistent/frames"}, "video_path"),
    ({"video_source": "/nonexistent/clip.mp4"}, "video_source"),
    ({"mask_path": "/nonexistent/masks"}, "mask_path"),
])
def test_a_missing_path_is_refused_with_422(webui, motion_modules, controlnet, before, ad_args, field):
    out = txt2img(webui, {"model": motion_modules["v2"], **ad_args}, [unit(controlnet)], expect=422)
    assert out["field"] == field
    assert plain(webui) == before


def test_paths_outside_the_allowed_roots_are_refused(webui, motion_modules, controlnet, tmp_path):
    inside = _write_frames(tmp_path / "allowed" / "clip", 8)
    outside = _write_frames(tmp_path / "other", 8)
    os.symlink(outside, tmp_path / "allowed" / "link")
    saved = webui.options().get("animatediff_allowed_roots", "")
    try:
        webui.set_options(animatediff_allowed_roots=str(tmp_path / "allowed"))
        ad_args = {"model": motion_modules["v2"], "format": ["GIF"]}
        for path in (outside, str(tmp_path / "allowed" / ".." / "other"), str(tmp_path / "allowed" / "link")):
            out = txt2img(webui, {**ad_args, "video_path": path}, [unit(controlnet)], expect=422)
            assert out["field"] == "video_path" and "outside" in out["detail"]
        assert gif_frame_count(txt2img(webui, {**ad_args, "video_path": inside}, [unit(controlnet)])) == 8
    finally:
        webui.set_options(animatediff_allowed_roots=saved)


def test_bad_frame_folders_are_refused_with_422(webui, motion_modules, controlnet, tmp_path):
    mixed = _write_frames(tmp_path / "mixed", 3)
    Image.new("RGB", (32, 32)).save(tmp_path / "mixed" / "frame9.png")
    notes = _write_frames(tmp_path / "notes", 3)
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, message in ((mixed, "mixes image sizes"), (notes, "not an image"), (str(empty), "no frames")):
        out = txt2img(webui, {"model": motion_modules["v2"], "video_path": folder}, [unit(controlnet)], expect=422)
        assert out["field"] == "video_path" and message in out["detail"], out


def test_plain_txt2img_after_v2v_is_bit_identical(webui, motion_modules, controlnet, before, tmp_path):
    folder = _write_frames(tmp_path / "a", 8)
    txt2img(webui, {"model": motion_modules["v2"], "video_path": folder, "batch_size": 4}, [unit(controlnet)])
    assert plain(webui) == before


# -- img2img batch tab, through the UI's own endpoint --------------------------------------------------------

def _gradio_img2img(webui, values_by_elem, script_values, mode=5):
    """Call the img2img button's function as the browser does: every input
    at its default, the given ones replaced."""
    config = requests.get(URL + "/config", timeout=60).json()
    components = {c["id"]: c for c in config["components"]}
    index, dependency = next((i, d) for i, d in enumerate(config["dependencies"]) if d.get("js") == "submit_img2img")
    data, elems = [], []
    for cid in dependency["inputs"]:
        props = components[cid].get("props", {})
        data.append(props.get("value"))
        elems.append(props.get("elem_id"))
    data[0], data[1] = f"task(test-{uuid.uuid4().hex[:8]})", mode
    # Inputs the page fills with lists before the first click.
    for i, cid in enumerate(dependency["inputs"]):
        if data[i] is None and components[cid]["type"] in ("dropdown", "checkboxgroup") \
                and components[cid].get("props", {}).get("multiselect", components[cid]["type"] == "checkboxgroup"):
            data[i] = []
    for elem, value in values_by_elem.items():
        data[elems.index(elem)] = value
    data[elems.index("img2img_batch_upload") - 1] = "from dir"  # the hidden batch source textbox
    for elem, value in script_values.items():
        data[elems.index(elem)] = value
    r = requests.post(URL + "/run/predict", json={"fn_index": index, "data": data,
                                                  "session_hash": uuid.uuid4().hex[:10]}, timeout=1200)
    assert r.status_code == 200, r.text[:2000]
    return r.json()


def _masked_batch(tmp_path):
    images = _write_frames(tmp_path / "in", 8)
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(8):
        mask = np.zeros((64, 64), np.uint8)
        mask[:, : 8 * (i + 1)] = 255  # a different inpaint area per frame
        Image.fromarray(mask).save(masks / f"frame{i}.png")
    output = tmp_path / "out"
    output.mkdir()
    return images, masks, output


def _batch_request(motion_modules, images, masks, output, **extra):
    return {"img2img_prompt": "a cat", "img2img_neg_prompt": "a dog", "img2img_steps": 2, "img2img_width": 64,
            "img2img_height": 64, "img2img_seed": 1234, "img2img_denoising_strength": 0.75,
            "img2img_batch_input_dir": images, "img2img_batch_output_dir": str(output),
            "img2img_batch_inpaint_mask_dir": str(masks), **extra}


AD_UI = {"animatediff-img2img-enable": True, "animatediff-img2img-video-length": 0,
         "animatediff-img2img-save-format": ["GIF", "PNG"]}


def test_img2img_batch_with_per_frame_masks_refuses_only_masked(webui, motion_modules, tmp_path):
    images, masks, output = _masked_batch(tmp_path)
    result = _gradio_img2img(webui, _batch_request(motion_modules, images, masks, output,
                                                   img2img_inpaint_full_res="Only masked"),
                             {**AD_UI, "animatediff-img2img-motion-module": motion_modules["v2"]})
    assert "Whole picture" in json.dumps(result), result
    assert not [f for _, _, files in os.walk(output) for f in files]  # nothing written


def test_img2img_batch_folder_with_masks_is_one_video(webui, motion_modules, tmp_path):
    images, masks, output = _masked_batch(tmp_path)
    result = _gradio_img2img(webui, _batch_request(motion_modules, images, masks, output),
                             {**AD_UI, "animatediff-img2img-motion-module": motion_modules["v2"]})
    assert "error" not in json.dumps(result).lower()[:500], result
    gifs = [f for _, _, files in os.walk(output / "AnimateDiff") for f in files if f.endswith(".gif")]
    pngs = sorted(f for f in os.listdir(output) if f.endswith(".png"))
    print("img2img batch wrote", pngs, gifs)
    assert len(pngs) == 8 and len(gifs) == 1, (pngs, gifs)
    # Outside each frame's mask the input shows through (the WebUI's overlay), inside it changed; 12 pixels
    # either side of the edge are left out for the mask blur (4 px: a 21-pixel kernel).
    for i, name in enumerate(pngs):
        out = np.asarray(Image.open(output / name).convert("RGB"), dtype=np.float32)
        source = _pattern(i).astype(np.float32)
        edge = 8 * (i + 1)
        if edge + 12 < 64:
            assert np.abs(out[:, edge + 12:] - source[:, edge + 12:]).mean() < 1.0, i
        if edge - 12 > 0:
            assert np.abs(out[:, : edge - 12] - source[:, : edge - 12]).mean() > 3.0, i
