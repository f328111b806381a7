"""Faults inside a real WebUI (skipped unless SD_WEBUI_URL is set).

Faults inside generation come from tests/webui/faults_extension, a test-only
extension linked into the test WebUI (the tests skip without it): an error
or an out-of-memory error raised in the motion module's forward or in the
VAE decode, an interrupt or a skip in either, an error or an interrupt while
a GIF is being written. The disk-full and read-only cases are real: a tmpfs
mounted as the output folder (skipped without root).

After every fault: the WebUI answers (an error naming what failed, or the
frames it has), no half-written or hidden temporary file is left, the
extension holds nothing (GET /animatediff/v1/status), the next plain
txt2img is bit-identical to one made before, and the next AnimateDiff run
gives exactly the frames it gave before the fault: the UNet, the noise
schedule and the motion LoRA's weights were all restored.
"""

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from small_fs import fill, free_bytes, tmpfs
from webui_loras import MOTION

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")

BASE = {"prompt": "a cat", "negative_prompt": "a dog", "steps": 2, "width": 64, "height": 64,
        "seed": 4321, "sampler_name": "Euler", "cfg_scale": 7}
FRAMES = 12  # over the context of 8: the faults land inside context windows
counts = {"faults": 0, "runs": 0}
HOOKS = ("before_process", "process", "after_extra_networks_activate", "process_before_every_sampling",
         "before_process_batch", "postprocess_batch", "postprocess", "on_cfg_denoiser")
CAUSES = {"raise": "RuntimeError", "attribute": "AttributeError", "oom": "OutOfMemoryError"}
hook_faults = []  # (hook, action, HTTP status, files written, what the answer said)


def ad(motion_modules, **params):
    return {"AnimateDiff": {"args": [{"enable": True, "model": motion_modules["v2"], "video_length": FRAMES,
                                      "batch_size": 8, "format": ["GIF"], **params}]}}


def arrays(images):
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(x))).convert("RGB")) for x in images]


def is_gif(b64):
    return base64.b64decode(b64)[:6] in (b"GIF87a", b"GIF89a")


@pytest.fixture(scope="module")
def faults(webui):
    if webui.get("/animatediff-faults/v1/fired").status_code != 200:
        pytest.skip("the test-only faults extension is not installed (link tests/webui/faults_extension into "
                    "the WebUI's extensions folder)")

    class Faults:
        def arm(self, at, do, after=0):
            r = webui.post(f"/animatediff-faults/v1/arm?at={at}&do={do}&after={after}")
            assert r.status_code == 200, r.text

        def fired(self):
            return webui.post("/animatediff-faults/v1/reset").json()["fired"]

    yield Faults()
    webui.post("/animatediff-faults/v1/reset")


@pytest.fixture
def outdir(webui, tmp_path):
    """The txt2img output folder, moved to a fresh folder for one test."""
    before = webui.options()["outdir_txt2img_samples"]
    folder = tmp_path / "out"
    folder.mkdir()
    webui.set_options(outdir_txt2img_samples=str(folder))
    yield folder
    webui.set_options(outdir_txt2img_samples=before)


@pytest.fixture(scope="module")
def before(webui, motion_modules, loras):
    """What a clean WebUI gives: a plain batch, an AnimateDiff video's frames,
    and the extension's status."""
    plain = post(webui, {**BASE, "batch_size": 2})
    assert plain.status_code == 200
    return {"plain": plain.json()["images"], "frames": reference_frames(webui, motion_modules),
            "status": webui.get("/animatediff/v1/status").json()}


def post(webui, payload):
    counts["runs"] += 1
    return webui.post("/sdapi/v1/txt2img", json=payload)


def reference_frames(webui, motion_modules):
    r = post(webui, {**BASE, "alwayson_scripts": ad(motion_modules, format=["GIF", "Frame"])})
    assert r.status_code == 200, r.text[:1000]
    return arrays(r.json()["images"][1:])


def files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def assert_nothing_left(webui, motion_modules, before, folder):
    leftovers = [f for f in files(folder) if f.endswith(".partial") or os.path.basename(f).startswith(".")]
    assert not leftovers, leftovers
    status = webui.get("/animatediff/v1/status").json()
    assert not status["unet_injected"] and status["decoded_frame_folders"] == 0, status
    assert status["callbacks"] == before["status"]["callbacks"]
    plain = post(webui, {**BASE, "batch_size": 2})
    assert plain.status_code == 200 and plain.json()["images"] == before["plain"]
    frames = reference_frames(webui, motion_modules)
    assert len(frames) == FRAMES and all(np.array_equal(a, b) for a, b in zip(frames, before["frames"]))


def error_text(body):
    """The error's message: "errors" in A1111's API answers, "message" in Forge's."""
    return body["errors"] if "errors" in body else body["message"]


def with_lora(prompt="a cat"):
    return f"{prompt} <lora:{MOTION}:1>"


@pytest.mark.parametrize("do", ["raise", "oom"])
@pytest.mark.parametrize("at, after", [("motion_module", 40), ("vae_decode", 0)])
def test_error_inside_generation_is_reported_and_undone(webui, motion_modules, before, faults, outdir, at, after,
                                                        do):
    """Mid-sampling (the 41st temporal block call: the second context window
    of the first step) or in the VAE decode, with a motion LoRA applied."""
    faults.arm(at, do, after)
    r = post(webui, {**BASE, "prompt": with_lora(), "save_images": True,
                     "alwayson_scripts": ad(motion_modules, format=["GIF", "PNG"])})
    counts["faults"] += 1
    assert faults.fired() == [f"{at}:{do}"]
    assert r.status_code == 500, r.text[:500]
    body = r.json()
    assert ("OutOfMemoryError" if do == "oom" else "RuntimeError") == body["error"]
    assert f"fault injected at {at}" in error_text(body)
    assert files(outdir) == []
    assert_nothing_left(webui, motion_modules, before, outdir)


@pytest.mark.parametrize("do", ["interrupt", "skip"])
@pytest.mark.parametrize("at, after", [("motion_module", 40), ("vae_decode", 0)])
def test_interrupt_or_skip_writes_no_unfinished_video(webui, motion_modules, before, faults, outdir, at, after, do):
    """Two videos (n_iter 2); the fault hits the first. Its frames come back
    and no file is written for it, as the WebUI saves no unfinished image;
    after a skip the second video is made and written as usual."""
    faults.arm(at, do, after)
    r = post(webui, {**BASE, "n_iter": 2, "prompt": with_lora(), "alwayson_scripts": ad(motion_modules)})
    counts["faults"] += 1
    assert faults.fired() == [f"{at}:{do}"]
    assert r.status_code == 200, r.text[:500]
    images = r.json()["images"]
    assert not any(is_gif(x) for x in images[:FRAMES]) and len(arrays(images[:FRAMES])) == FRAMES
    gifs = [f for f in files(outdir) if f.endswith(".gif")]
    if do == "interrupt":
        assert len(images) == FRAMES and gifs == []
    else:
        assert len(images) == FRAMES + 1 and is_gif(images[FRAMES]) and len(gifs) == 1
        assert Image.open(outdir / gifs[0]).n_frames == FRAMES
    assert_nothing_left(webui, motion_modules, before, outdir)


def test_error_in_a_controlled_window_leaves_controlnet_as_it_was(webui, motion_modules, before, faults, outdir,
                                                                 controlnet, tmp_path):
    """Video-to-video with sd-webui-controlnet (skipped without it): an error
    in the second context window, while each window's hint rows are swapped
    in, then the same request again gives the frames it gave before."""
    from test_webui_controlnet import _write_frames, unit

    args = {"model": motion_modules["v2"], "video_length": 0, "batch_size": 8, "format": ["GIF", "Frame"],
            "video_path": _write_frames(tmp_path / "source", FRAMES)}
    payload = {**BASE, "alwayson_scripts": {"AnimateDiff": {"args": [{"enable": True, **args}]},
                                            "controlnet": {"args": [unit(controlnet)]}}}
    first = post(webui, payload)
    assert first.status_code == 200, first.text[:500]
    faults.arm("motion_module", "raise", 40)
    failed = post(webui, payload)
    counts["faults"] += 1
    assert faults.fired() == ["motion_module:raise"] and failed.status_code == 500
    again = post(webui, payload)
    assert again.status_code == 200
    a, b = arrays(first.json()["images"][1:]), arrays(again.json()["images"][1:])
    assert len(a) == FRAMES and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert_nothing_left(webui, motion_modules, before, outdir)


def test_interrupt_while_writing_leaves_whole_files(webui, motion_modules, before, faults, outdir):
    """Sampling is over: the files being written are finished, whole."""
    faults.arm("write", "interrupt")
    r = post(webui, {**BASE, "alwayson_scripts": ad(motion_modules, format=["GIF", "MP4", "TXT"])})
    counts["faults"] += 1
    assert faults.fired() == ["write:interrupt"]
    assert r.status_code == 200, r.text[:500]
    written = files(outdir)
    assert [os.path.splitext(f)[1] for f in written] == [".gif", ".mp4", ".txt"], written
    assert Image.open(outdir / written[0]).n_frames == FRAMES
    assert_nothing_left(webui, motion_modules, before, outdir)


def test_error_while_writing_is_reported_and_the_other_files_are_written(webui, motion_modules, before, faults,
                                                                         outdir):
    faults.arm("write", "raise")
    r = post(webui, {**BASE, "alwayson_scripts": ad(motion_modules, format=["GIF", "MP4", "TXT"])})
    counts["faults"] += 1
    assert faults.fired() == ["write:raise"]
    assert r.status_code == 500, r.text[:500]
    detail = r.json()["detail"]
    assert detail.startswith("AnimateDiff could not write GIF into ") and "fault injected at write" in detail
    written = files(outdir)
    assert [os.path.splitext(f)[1] for f in written] == [".mp4", ".txt"], written
    assert "Written: " in detail and os.path.basename(written[0]) in detail
    assert_nothing_left(webui, motion_modules, before, outdir)


def test_read_only_output_folder(webui, motion_modules, before, tmp_path):
    with tmpfs(tmp_path / "ro", 64, readonly=True) as root:
        previous = webui.options()["outdir_txt2img_samples"]
        webui.set_options(outdir_txt2img_samples=str(root))
        try:
            r = post(webui, {**BASE, "alwayson_scripts": ad(motion_modules, format=["GIF", "MP4"])})
        finally:
            webui.set_options(outdir_txt2img_samples=previous)
        counts["faults"] += 1
        assert r.status_code == 500, r.text[:500]
        detail = r.json()["detail"]
        assert "could not write GIF" in detail and "MP4" in detail and "Read-only file system" in detail
        assert str(root) in detail
        assert files(root) == []
        assert_nothing_left(webui, motion_modules, before, root)


def test_disk_full_mid_gif_keeps_the_png_frames(webui, motion_modules, before, tmp_path, figures):
    """A real full disk: the WebUI saves the frames as PNG, then the GIF runs
    out of space part-way. HTTP 507 names the GIF and the PNG folder; the
    PNGs are all there and whole, no GIF and no temporary file is."""
    payload = {**BASE, "save_images": True, "alwayson_scripts": ad(motion_modules, format=["GIF", "PNG"])}
    with tmpfs(tmp_path / "small", 4096) as root:
        previous = webui.options()["outdir_txt2img_samples"]
        webui.set_options(outdir_txt2img_samples=str(root))
        try:
            free = free_bytes(root)
            r = post(webui, payload)  # once with room, to learn the sizes (the run is deterministic)
            assert r.status_code == 200, r.text[:500]
            needed = free - free_bytes(root)
            gif = [f for f in files(root) if f.endswith(".gif")]
            gif_size = os.path.getsize(Path(root) / gif[0])
            assert len(gif) == 1 and len([f for f in files(root) if f.endswith(".png")]) == FRAMES
            for f in files(root):
                os.remove(Path(root) / f)
            filler = fill(root, leave_bytes=needed - 4096)  # the GIF's last page does not fit
            r = post(webui, payload)
        finally:
            webui.set_options(outdir_txt2img_samples=previous)
        counts["faults"] += 1
        assert r.status_code == 507, r.text[:500]
        detail = r.json()["detail"]
        assert "could not write GIF" in detail and "No space left on device" in detail
        assert f"The frames are saved as PNG in {root}" in detail
        left = [f for f in files(root) if os.path.join(root, f) != filler]
        assert [f for f in left if f.endswith(".png")] == left and len(left) == FRAMES, left
        for f in left:
            assert Image.open(Path(root) / f).size == (64, 64)
        os.remove(filler)
        assert_nothing_left(webui, motion_modules, before, root)
        figures.append(f"faults: disk full after {needed - 4096} of {needed} bytes (GIF {gif_size} bytes): "
                       f"HTTP 507, {FRAMES} PNG frames kept, no partial file")


@pytest.mark.parametrize("do", list(CAUSES))
@pytest.mark.parametrize("at", HOOKS)
def test_error_in_a_hook_fails_the_generation(webui, motion_modules, before, faults, outdir, at, do):
    """The WebUI catches what a script's hook raises and carries on; ours make
    the generation fail instead (animatediff_webui/guard.py): an answer naming
    AnimateDiff, the hook and the cause, no video in it, no file written, and
    nothing left injected or patched (a motion LoRA is applied). In
    postprocess the WebUI has saved its own PNG frames already, so that case
    asks for GIF and MP4 only; on_cfg_denoiser runs the travel code, so that
    case has a travel prompt."""
    if at == "process_before_every_sampling":
        webui.skip_on_a1111("process_before_every_sampling is a hook of Forge's")
    prompt = with_lora("0: a cat") + "\n4: a dog" if at == "on_cfg_denoiser" else with_lora()
    formats = ["GIF", "MP4"] if at == "postprocess" else ["GIF", "PNG"]
    faults.arm(at, do)
    r = post(webui, {**BASE, "prompt": prompt, "save_images": True, "alwayson_scripts": ad(motion_modules,
                                                                                             format=formats)})
    counts["faults"] += 1
    assert faults.fired() == [f"{at}:{do}"]
    written = files(outdir)
    hook_faults.append((at, do, r.status_code, len(written)))
    assert r.status_code == 500, r.text[:500]
    body = r.json()
    assert body["error"] == "HookError" and "images" not in body, r.text[:500]
    message = error_text(body)
    assert message.startswith(f"AnimateDiff failed in {at}: {CAUSES[do]}: "), message
    assert f"fault injected at {at}" in message and body["detail"] == message
    assert written == []
    assert_nothing_left(webui, motion_modules, before, outdir)


def test_a_model_function_wrapper_set_after_ours_fails_the_generation(webui, motion_modules, before, faults, outdir):
    """Forge: each evaluation reaches the motion module through our model
    function wrapper (the context windows, the step cache). Another
    extension replacing it after ours would run the 12 frames in one pass
    outside their windows; the generation fails instead, naming the cause,
    and nothing is written or left behind."""
    webui.skip_on_a1111("the model function wrapper is Forge's (A1111's UNet forward is wrapped per instance)")
    faults.arm("after_bind", "replace_wrapper")
    r = post(webui, {**BASE, "prompt": with_lora(), "save_images": True,
                     "alwayson_scripts": ad(motion_modules, format=["GIF", "PNG"])})
    counts["faults"] += 1
    assert faults.fired() == ["after_bind:replace_wrapper"]
    assert r.status_code == 500, r.text[:500]
    body = r.json()
    assert body["error"] == "MotionModuleError", r.text[:500]
    assert "outside AnimateDiff's evaluation" in error_text(body) and "model function" in error_text(body)
    assert files(outdir) == []
    assert_nothing_left(webui, motion_modules, before, outdir)


@pytest.mark.parametrize("at", ["before_process_off", "after_extra_networks_activate"])
def test_error_in_a_hook_without_animatediff_leaves_the_plain_generation_alone(webui, before, faults, at):
    """AnimateDiff not enabled (webuiapi sends args [False] with every request):
    our error is logged and the plain images are made as without the extension."""
    faults.arm(at, "raise")
    r = post(webui, {**BASE, "batch_size": 2, "alwayson_scripts": {"AnimateDiff": {"args": [False]}}})
    counts["faults"] += 1
    assert faults.fired() == [f"{at}:raise"]
    hook_faults.append((at, "raise (AnimateDiff off)", r.status_code, 0))
    assert r.status_code == 200, r.text[:500]
    assert r.json()["images"] == before["plain"]


def test_zz_report(figures):
    if hook_faults:
        failed = sum(1 for _, do, status, written in hook_faults if status == 500 and not written)
        plain = sum(1 for _, do, status, _ in hook_faults if "off" in do and status == 200)
        hooks = sorted({at for at, _, _, _ in hook_faults})
        figures.append(f"faults: {len(hook_faults)} hook faults over {len(hooks)} hook points ({', '.join(hooks)}): "
                       f"{failed} generations failed with HTTP 500 naming AnimateDiff, the hook and the cause, no "
                       f"video and no file; {plain} with AnimateDiff off went on, plain images unchanged")
    if not counts["faults"]:
        pytest.skip("no fault ran")
    figures.append(f"faults: {counts['faults']} faults injected in the WebUI over {counts['runs']} generation "
                   f"requests; after each, nothing left and the next plain and AnimateDiff runs unchanged")
